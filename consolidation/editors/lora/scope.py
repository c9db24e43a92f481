"""LoRA served inside its subjects' scope: the adapter's rows apply only at tokens that read a live
subject's key, as ROME's scoped memory does (`consolidation/editors/rome/joint.py::scoped`).

Why: an adapter acts on every token with any component along its rows, however small, so near-tied
neutral prompts flip whatever the anchor's weight (docs/results.md#loras-locality-anchor: 0.94 of 50 at
twice the anchor). A scope makes the rest of the model's inputs see the base module bit for bit.

How: for each edited module and each subject, an opener row d = C⁻¹k/(kᵀC⁻¹k), where k is the module's
input at the subject's last token averaged over ROME's key contexts and C its second moment over plain
text (ROME's statistics, shared cache), so d reads 1 at k. The scope is open at a token where some opener
reads at least `opens_at`. The adapter is trained with the gate in place, so it learns to write the
preference at the subject's tokens, where it is served; opener rows carry a zero output and only gate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from consolidation.editors.base import EditRequest
from consolidation.editors.rome.config import RomeConfig
from consolidation.editors.rome.editor import RomeEditor
from consolidation.editors.rome.joint import down_row
from consolidation.editors.rome.keys import subject_inputs
from memory.weights.delta import LowRankUpdate


class SubjectScope:
    """Opener rows per module for a set of subjects, from ROME's keys and statistics."""

    def __init__(self, rome: RomeConfig) -> None:
        self._rome = RomeEditor(rome)  # its key contexts and C's Cholesky factors, cached per model

    def openers(
        self, model: nn.Module, tokenizer: Any, module_name: str, pairs: Sequence[EditRequest]
    ) -> torch.Tensor:
        """(n_pairs, in) rows that read 1 at each pair's subject key in `module_name` (float32)."""
        chol = self._rome.cholesky_of(model, tokenizer, module_name)
        contexts = self._rome.contexts_of(model, tokenizer)
        rows = []
        for pair in pairs:
            start, end = pair.subject_span()
            prompt = pair.filled_prompt
            inputs = subject_inputs(model, tokenizer, module_name, prompt, end, contexts, "", start)
            rows.append(down_row(inputs.context_keys.mean(dim=0), chol).float())
        return torch.stack(rows).to(next(model.parameters()).device)


def opener_update(
    module: str, openers: torch.Tensor, opens_at: float, out_features: int, label: str
) -> LowRankUpdate:
    """The opener rows as served: they open the module's scope at `opens_at` and write nothing."""
    shut = torch.zeros(out_features, openers.shape[0])
    return LowRankUpdate.in_scope(module, openers.detach().cpu(), shut, label=label, opens_at=opens_at)


def gated(
    term: Callable[[torch.Tensor], torch.Tensor], opener: LowRankUpdate
) -> Callable[[torch.Tensor], torch.Tensor]:
    """`term` counted only at the tokens where `opener` opens the scope: the served gate
    (`LowRankUpdate.opens`), so the adapter is trained for exactly the model it is served as."""

    def apply(x: torch.Tensor) -> torch.Tensor:
        is_open = opener.opens(x)
        assert is_open is not None  # an opener update is scoped
        return term(x) * is_open.to(x.dtype)

    return apply
