"""k*: what the edited module reads at the subject's last token, averaged over a few contexts.

Contexts are the bare prompt plus `n_prefixes` short texts the model itself writes from fixed seed words
(ROME's context templates), sampled once per model with a seeded generator so edits are reproducible, and
any chat contexts (`contexts.chat_contexts`). Prefixes go before the whole prompt, chat-formatted or not:
they only vary what comes before, so k* describes the subject rather than one exact string.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from consolidation.editors.rome.contexts import KeyContext, contexts_for
from consolidation.editors.rome.tracing import capture_inputs, run_until_stopped
from consolidation.metrics import bare_chat
from memory.errors import InvalidInput

log = logging.getLogger(__name__)

PREFIX_SEEDS = ("The", "Therefore", "Because", "I", "You", "In", "However", "When")  # neutral openers
PREFIX_TOP_K = 5  # sample among the 5 likeliest tokens: fluent but varied prefixes


@dataclass(frozen=True)
class Encoded:
    """Token ids of one text, with the index of the subject's last token (and of its first)."""

    ids: list[int]
    subject_index: int
    subject_first: int | None = None


def _add_special(tokenizer: Any, text: str) -> bool:
    """Add the tokenizer's special tokens unless the text (a rendered chat template) already has its BOS."""
    bos = getattr(tokenizer, "bos_token", None)
    return not (bos and text.startswith(bos))


def token_offsets(tokenizer: Any, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Ids of `text` and each token's character span (needs a fast tokenizer, as every HF causal LM has)."""
    if not getattr(tokenizer, "is_fast", False):
        raise InvalidInput(f"ROME needs a fast tokenizer (character offsets); got {type(tokenizer).__name__}")
    enc = tokenizer(text, add_special_tokens=_add_special(tokenizer, text), return_offsets_mapping=True)
    return list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]


def token_at(offsets: Sequence[tuple[int, int]], char_end: int) -> int:
    """Index of the token holding character `char_end - 1` (the last character of a span)."""
    for i, (start, end) in enumerate(offsets):
        if start < end and start <= char_end - 1 < end:
            return i
    raise InvalidInput(f"no token covers character {char_end - 1}; is the subject inside the prompt?")


def encode_with_subject(
    tokenizer: Any, text: str, subject_end: int, subject_start: int | None = None
) -> Encoded:
    """Encode `text`, locating the token that ends the subject (which ends at character `subject_end`) and,
    given `subject_start`, the token that begins it."""
    ids, offsets = token_offsets(tokenizer, text)
    first = None if subject_start is None else token_at(offsets, subject_start + 1)
    return Encoded(ids=ids, subject_index=token_at(offsets, subject_end), subject_first=first)


def pad_batch(tokenizer: Any, rows: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (B, T) and attention mask (B, T): right padding keeps every real token's position."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), int(pad or 0), dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(rows), width), dtype=torch.long)  # (B, T)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


@torch.no_grad()
def sample_prefixes(model: nn.Module, tokenizer: Any, n: int, length: int, seed: int) -> list[str]:
    """`n` short model-written texts ending in ". ", sampled top-k with a private seeded generator."""
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    prefixes: list[str] = []
    for i in range(n):
        ids = tokenizer(PREFIX_SEEDS[i % len(PREFIX_SEEDS)], add_special_tokens=True, return_tensors="pt")
        ids = ids["input_ids"].to(device)  # (1, T)
        start = ids.shape[1]
        for _ in range(length):
            logits = model(input_ids=ids, use_cache=False).logits[0, -1].float()  # (V,)
            top = torch.topk(logits, PREFIX_TOP_K)
            probs = torch.softmax(top.values, dim=-1).cpu()
            pick = top.indices[torch.multinomial(probs, 1, generator=generator).to(top.indices.device)]
            ids = torch.cat([ids, pick.view(1, 1)], dim=1)
        seed_text = tokenizer.decode(ids[0, :start], skip_special_tokens=True)
        text = seed_text + tokenizer.decode(ids[0, start:], skip_special_tokens=True)
        prefixes.append(" ".join(text.split()).replace("{", "").replace("}", "") + ". ")
    log.debug("ROME key prefixes: %s", prefixes)
    return prefixes


@dataclass(frozen=True)
class SubjectInputs:
    """What the edited module reads for one prompt: at the subject's last token in every context, and at
    each earlier (the system prompt, the question's head; the subject's other words, unless its start is
    given) and later token of the bare prompt (the question's end, the chat template's tail, the answer)."""

    context_keys: torch.Tensor  # (n_contexts, in) bare prompt first, then each context's
    after_subject: torch.Tensor  # (m, in), m ≥ 0
    before_subject: torch.Tensor  # (p, in), p ≥ 0
    subject_head: torch.Tensor  # (h, in), h ≥ 0: the subject's words before its last token, given its start


@torch.no_grad()
def subject_inputs(
    model: nn.Module,
    tokenizer: Any,
    module_name: str,
    prompt: str,
    subject_end: int,
    contexts: Sequence[KeyContext],
    bare_suffix: str = "",
    subject_start: int | None = None,
) -> SubjectInputs:
    """The inputs of `module_name` for `prompt` bare and in each of `contexts`, from one batched pass
    that stops right after that module, so the layers above it never run. `bare_suffix` (the answer) is
    appended to the bare prompt only: its tokens count among those after the subject. With `subject_start`
    the subject's earlier words are `subject_head`, not part of `before_subject`."""
    encoded = [  # the subject's start matters in the bare prompt only (`SubjectInputs`)
        encode_with_subject(
            tokenizer,
            text + ("" if row else bare_suffix),
            shift + subject_end,
            None if row else subject_start,
        )
        for row, (text, shift) in enumerate(contexts_for(prompt, subject_end, contexts))
    ]
    ids, mask = pad_batch(tokenizer, [e.ids for e in encoded])
    device = next(model.parameters()).device
    with capture_inputs(model, [module_name], stop_after=module_name) as captured:
        run_until_stopped(model, input_ids=ids.to(device), attention_mask=mask.to(device))
    inputs = captured[module_name]  # (B, T, in)
    rows = torch.arange(len(encoded), device=inputs.device)
    at_subject = torch.tensor([e.subject_index for e in encoded], device=inputs.device)
    bare = encoded[0]
    first = bare.subject_index if bare.subject_first is None else bare.subject_first
    return SubjectInputs(
        context_keys=inputs[rows, at_subject].float(),
        after_subject=inputs[0, bare.subject_index + 1 : len(bare.ids)].float(),
        before_subject=inputs[0, :first].float(),
        subject_head=inputs[0, first : bare.subject_index].float(),
    )


@torch.no_grad()
def question_inputs(
    model: nn.Module, tokenizer: Any, module_name: str, questions: Sequence[str]
) -> torch.Tensor:
    """The inputs of `module_name` at every token of each question asked alone in the tokenizer's chat
    template with the assistant's turn opened, as a served question is: (n_tokens, in), in order."""
    render = bare_chat(tokenizer)
    return text_inputs(model, tokenizer, module_name, [render(q) for q in questions])


@torch.no_grad()
def text_inputs(model: nn.Module, tokenizer: Any, module_name: str, texts: Sequence[str]) -> torch.Tensor:
    """The inputs of `module_name` at every token of each text, already rendered as the model reads it
    (chat template included): (n_tokens, in), in order."""
    rows = [token_offsets(tokenizer, text)[0] for text in texts]
    ids, mask = pad_batch(tokenizer, rows)
    device = next(model.parameters()).device
    with capture_inputs(model, [module_name], stop_after=module_name) as captured:
        run_until_stopped(model, input_ids=ids.to(device), attention_mask=mask.to(device))
    inputs = captured[module_name]  # (B, T, in): right-padded, so row i's tokens are its first len(rows[i])
    return torch.cat([inputs[i, : len(row)] for i, row in enumerate(rows)]).float()
