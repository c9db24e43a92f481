"""Per-item probe scores of the model as it is (a caller activates a delta around these), batched.

Each function returns one number per fixed item, so base and candidate pair up for the paired tests.
Prompts are plain text, not chat: they probe what the model knows and how it reads, which is what edits
may damage, and plain-text scoring needs no generation for BoolQ and perplexity.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers import StoppingCriteria, StoppingCriteriaList

from consolidation.drift.data import BoolqItem, NqItem

# a batch's (B, T, H) last hidden states after the final norm; the LM head is applied only where needed
Body = Callable[[dict[str, torch.Tensor]], torch.Tensor]

BOOLQ_PROMPT = "{passage}\nQuestion: {question}?\nAnswer:"
NQ_PROMPT = "Question: {question}?\nAnswer:"


def _encode(tokenizer: Any, texts: Sequence[str], side: str) -> dict[str, torch.Tensor]:
    old = tokenizer.padding_side
    tokenizer.padding_side = side
    try:
        return dict(tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False))
    finally:
        tokenizer.padding_side = old


def full_body(model: Any) -> Body:
    """The whole decoder body, no KV cache: what `UpperReplay` shortens."""

    def run(enc: dict[str, torch.Tensor]) -> torch.Tensor:
        out: torch.Tensor = model.base_model(**enc, use_cache=False).last_hidden_state
        return out

    return run


def _first_token(tokenizer: Any, word: str) -> int:
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    return int(ids[0])


def _truncate(tokenizer: Any, text: str, max_tokens: int) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= max_tokens else str(tokenizer.decode(ids[:max_tokens]))


@torch.inference_mode()
def boolq_scores(
    model: Any,
    tokenizer: Any,
    items: Sequence[BoolqItem],
    passage_tokens: int,
    batch_size: int,
    body: Body | None = None,
) -> tuple[list[float], list[float]]:
    """(correct, margin) per item: whether log p(" yes") vs log p(" no") picks the gold answer, and the
    gold answer's log-odds over the other (a continuous score that moves before accuracy does)."""
    body = body or full_body(model)
    head = model.get_output_embeddings()
    yes, no = _first_token(tokenizer, " yes"), _first_token(tokenizer, " no")
    prompts = [
        BOOLQ_PROMPT.format(passage=_truncate(tokenizer, it.passage, passage_tokens), question=it.question)
        for it in items
    ]
    correct: list[float] = []
    margin: list[float] = []
    for start in range(0, len(prompts), batch_size):
        enc = _encode(tokenizer, prompts[start : start + batch_size], "left")
        logits = head(body(enc)[:, -1, :])  # (B, V): the LM head on the last position only
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


class _FirstLineDone(StoppingCriteria):
    """Marks a row done once its answer has a first line (text, then a line break): exact match reads only
    that line, so stopping there scores the same as generating every token."""

    def __init__(self, tokenizer: Any, width: int) -> None:
        self.tokenizer, self.width = tokenizer, width

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
    ) -> torch.BoolTensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.width :], skip_special_tokens=True)
        done = ["\n" in t.lstrip() for t in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]


@torch.inference_mode()
def nq_scores(
    model: Any,
    tokenizer: Any,
    items: Sequence[NqItem],
    answer_tokens: int,
    batch_size: int,
    body: Body | None = None,
) -> tuple[list[float], list[float]]:
    """(loglik, exact) per item: mean log-likelihood per token of the first gold answer after the prompt,
    and whether the greedy answer's first line equals any gold answer after normalisation.

    The teacher-forced pass runs the decoder body and applies the LM head only where a gold token is
    predicted (a few positions per row, not every prompt token); generation runs in batches of four times
    `batch_size` and stops at the first line break, which is all exact match reads.
    """
    body = body or full_body(model)
    loglik: list[float] = []
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    head = model.get_output_embeddings()
    prompts = [NQ_PROMPT.format(question=it.question) for it in items]
    for start in range(0, len(items), batch_size):
        chunk, chunk_prompts = items[start : start + batch_size], prompts[start : start + batch_size]
        # teacher-forced gold answers: right padding keeps each prompt's positions
        prompt_lens = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in chunk_prompts]
        full = _encode(
            tokenizer, [p + " " + it.answers[0] for p, it in zip(chunk_prompts, chunk, strict=True)], "right"
        )
        hidden = body(full)  # (B, T, H), final norm applied
        ids, mask = full["input_ids"], full["attention_mask"]
        for row, n_prompt in enumerate(prompt_lens):
            end = int(mask[row].sum())
            targets = ids[row, n_prompt:end]  # (A,)
            if not len(targets):
                loglik.append(0.0)
                continue
            logp = F.log_softmax(head(hidden[row, n_prompt - 1 : end - 1]).float(), dim=-1)  # (A, V)
            loglik.append(float(logp.gather(1, targets[:, None])[:, 0].mean()))
    exact: list[float] = []
    gen_batch = batch_size * 4
    for start in range(0, len(items), gen_batch):
        chunk = items[start : start + gen_batch]
        enc = _encode(tokenizer, prompts[start : start + gen_batch], "left")
        gen = model.generate(
            **enc,
            max_new_tokens=answer_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=pad,
            stopping_criteria=StoppingCriteriaList([_FirstLineDone(tokenizer, enc["input_ids"].shape[1])]),
        )
        width = enc["input_ids"].shape[1]
        for row, it in enumerate(chunk):
            text = tokenizer.decode(gen[row, width:], skip_special_tokens=True).strip().split("\n")[0]
            gold = {normalize_answer(a) for a in it.answers}
            exact.append(float(normalize_answer(text) in gold))
    return loglik, exact


@torch.inference_mode()
def window_nll(
    model: Any,
    tokenizer: Any,
    text: str,
    n_tokens: int,
    window: int,
    batch_size: int,
    body: Body | None = None,
) -> list[float]:
    """Mean next-token NLL of each `window`-token slice of the first `n_tokens` tokens of `text`; the
    perplexity is exp of their mean (every window has the same length, so the mean is over tokens)."""
    ids = tokenizer(text[: n_tokens * 12], add_special_tokens=False)["input_ids"][:n_tokens]
    n_windows = len(ids) // window
    if n_windows == 0:
        raise ValueError(f"held-out text gives {len(ids)} tokens, fewer than one {window}-token window")
    rows = torch.tensor(ids[: n_windows * window]).view(n_windows, window)  # (W, window)
    body, head = body or full_body(model), model.get_output_embeddings()
    out: list[float] = []
    for start in range(0, n_windows, batch_size):
        batch = rows[start : start + batch_size]
        logits = head(body({"input_ids": batch})[:, :-1]).float()  # (B, window-1, V)
        nll = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="none"
        )
        out.extend(nll.view(batch.shape[0], -1).mean(dim=1).tolist())
    return out
