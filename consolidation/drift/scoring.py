"""Per-item probe scores of the model as it is (a caller activates a delta around these), batched.

Each function returns one number per fixed item, so base and candidate pair up for the paired tests.
Prompts are plain text, not chat: they probe what the model knows and how it reads, which is what edits
may damage, and plain-text scoring needs no generation for BoolQ and perplexity.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from consolidation.drift.data import BoolqItem, NqItem

BOOLQ_PROMPT = "{passage}\nQuestion: {question}?\nAnswer:"
NQ_PROMPT = "Question: {question}?\nAnswer:"


def _encode(tokenizer: Any, texts: Sequence[str], side: str) -> dict[str, torch.Tensor]:
    old = tokenizer.padding_side
    tokenizer.padding_side = side
    try:
        return dict(tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False))
    finally:
        tokenizer.padding_side = old


def _first_token(tokenizer: Any, word: str) -> int:
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    return int(ids[0])


def _truncate(tokenizer: Any, text: str, max_tokens: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens else str(tokenizer.decode(ids[:max_tokens]))


@torch.inference_mode()
def boolq_scores(
    model: Any, tokenizer: Any, items: Sequence[BoolqItem], passage_tokens: int, batch_size: int
) -> tuple[list[float], list[float]]:
    """(correct, margin) per item: whether log p(" yes") vs log p(" no") picks the gold answer, and the
    gold answer's log-odds over the other (a continuous score that moves before accuracy does)."""
    yes, no = _first_token(tokenizer, " yes"), _first_token(tokenizer, " no")
    prompts = [
        BOOLQ_PROMPT.format(passage=_truncate(tokenizer, it.passage, passage_tokens), question=it.question)
        for it in items
    ]
    correct: list[float] = []
    margin: list[float] = []
    for start in range(0, len(prompts), batch_size):
        enc = _encode(tokenizer, prompts[start : start + batch_size], "left")
        logits = model(**enc, logits_to_keep=1).logits[:, -1, :]  # (B, V): the LM head on one position
        logp = F.log_softmax(logits.float(), dim=-1)
        odds = (logp[:, yes] - logp[:, no]).tolist()
        for item, o in zip(items[start : start + batch_size], odds, strict=True):
            signed = o if item.answer else -o
            margin.append(signed)
            correct.append(float(signed > 0))
    return correct, margin


def normalize_answer(text: str) -> str:
    """SQuAD-style: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


@torch.inference_mode()
def nq_scores(
    model: Any, tokenizer: Any, items: Sequence[NqItem], answer_tokens: int, batch_size: int
) -> tuple[list[float], list[float]]:
    """(loglik, exact) per item: mean log-likelihood per token of the first gold answer after the prompt,
    and whether the greedy answer's first line equals any gold answer after normalisation."""
    loglik: list[float] = []
    exact: list[float] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        prompts = [NQ_PROMPT.format(question=it.question) for it in chunk]
        # teacher-forced gold answers: right padding keeps each prompt's positions
        prompt_lens = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        full = _encode(
            tokenizer, [p + " " + it.answers[0] for p, it in zip(prompts, chunk, strict=True)], "right"
        )
        logp = F.log_softmax(model(**full).logits.float(), dim=-1)  # (B, T, V)
        ids, mask = full["input_ids"], full["attention_mask"]
        for row, n_prompt in enumerate(prompt_lens):
            end = int(mask[row].sum())
            targets = ids[row, n_prompt:end]  # (A,)
            picked = logp[row, n_prompt - 1 : end - 1].gather(1, targets[:, None])[:, 0]
            loglik.append(float(picked.mean()) if len(targets) else 0.0)
        enc = _encode(tokenizer, prompts, "left")
        gen = model.generate(
            **enc,
            max_new_tokens=answer_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=pad,
        )
        width = enc["input_ids"].shape[1]
        for row, it in enumerate(chunk):
            text = tokenizer.decode(gen[row, width:], skip_special_tokens=True).strip().split("\n")[0]
            gold = {normalize_answer(a) for a in it.answers}
            exact.append(float(normalize_answer(text) in gold))
    return loglik, exact


@torch.inference_mode()
def window_nll(
    model: Any, tokenizer: Any, text: str, n_tokens: int, window: int, batch_size: int
) -> list[float]:
    """Mean next-token NLL of each `window`-token slice of the first `n_tokens` tokens of `text`; the
    perplexity is exp of their mean (every window has the same length, so the mean is over tokens)."""
    ids = tokenizer(text[: n_tokens * 12], add_special_tokens=False)["input_ids"][:n_tokens]
    n_windows = len(ids) // window
    if n_windows == 0:
        raise ValueError(f"held-out text gives {len(ids)} tokens, fewer than one {window}-token window")
    rows = torch.tensor(ids[: n_windows * window]).view(n_windows, window)  # (W, window)
    out: list[float] = []
    for start in range(0, n_windows, batch_size):
        batch = rows[start : start + batch_size]
        logits = model(input_ids=batch).logits[:, :-1].float()  # (B, window-1, V)
        nll = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="none"
        )
        out.extend(nll.view(batch.shape[0], -1).mean(dim=1).tolist())
    return out
