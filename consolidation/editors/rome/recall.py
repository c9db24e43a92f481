"""Which live facts a ROME memory still answers: the check behind `RomeConfig.refit_lost`.

Why: every edit re-solves the whole memory, and a value whose key is nearly parallel to other live keys
(subjects that share their last word: "seasonal preference", "music preference") keeps only part of its
change through the solve's ridge. Over hundreds of edits such values weaken until the model falls back on
the subject's own words (docs/results.md#stability). The loss shows in the model's answer long before it is
predictable from the matrices, so it is measured there: one teacher-forced pass over every live fact's
prompt and target says whether the target is still the greedy continuation, the same test that ends a v*
fit (`RomeConfig.early_stop_on_greedy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from consolidation.editors.base import EditRequest
from consolidation.editors.rome.keys import pad_batch
from consolidation.editors.rome.values import with_target

CHECK_BATCH = 16  # rows per forward pass: bounded memory on a small machine, few passes for a large memory


def _target_positions(tokenizer: Any, request: EditRequest) -> tuple[list[int], list[int]]:
    """(ids of prompt + target, indices of the target's tokens), as the v* fit reads them."""
    ids, _, positions = with_target(tokenizer, request.filled_prompt, request.target)
    return ids, positions


@torch.no_grad()
def answers_target(model: nn.Module, tokenizer: Any, requests: Sequence[EditRequest]) -> list[bool]:
    """For each request, whether the model as it runs now (any active delta included) greedily continues
    its prompt with every token of its target. Teacher-forced, so one pass per batch however long the
    targets are."""
    rows = [_target_positions(tokenizer, r) for r in requests]
    device = next(model.parameters()).device
    out: list[bool] = []
    for start in range(0, len(rows), CHECK_BATCH):
        chunk = rows[start : start + CHECK_BATCH]
        ids, mask = pad_batch(tokenizer, [r[0] for r in chunk])
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
        greedy = logits.argmax(dim=-1).cpu()  # (B, T): the token each position predicts next
        for row, (row_ids, positions) in enumerate(chunk):
            wanted = torch.tensor([row_ids[p] for p in positions])
            predicted = greedy[row, [p - 1 for p in positions]]
            out.append(bool((predicted == wanted).all()))
    return out
