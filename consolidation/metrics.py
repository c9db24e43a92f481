"""Edit metrics: efficacy, paraphrase, implicit (answers judged by `TargetJudge`) and locality.

All questions are asked in chat form, the way the agent asks them: edits must show up in chat answers, not
only in raw completions. Metrics take the model as it is, so a caller measures a user's weight memory by
running them inside `WeightMemory.applied(user)`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from consolidation.judge import TargetJudge


@dataclass(frozen=True)
class ProbeItem:
    """One preference to check: the questions to ask and the targets that count as recalled."""

    question: str
    targets: tuple[str, ...]
    paraphrase: str | None = None
    implicit: str | None = None


Render = Callable[[str], str]  # a question → the full prompt text the model sees (chat template included)


def bare_chat(tokenizer: Any) -> Render:
    """The question as the only user turn of the tokenizer's chat template."""

    def render(question: str) -> str:
        text: str = tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
        )
        return text

    return render


def chat_batch(
    tokenizer: Any, questions: Sequence[str], render: Render | None = None
) -> dict[str, torch.Tensor]:
    """`questions` rendered (default: bare chat) and left-padded: every row ends at its generation prompt,
    so position -1 is each row's first answer position."""
    texts = [(render or bare_chat(tokenizer))(q) for q in questions]
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # decoder-only: pad on the left so every row ends at its prompt
    try:
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tokenizer.padding_side = side
    return dict(enc)


@torch.inference_mode()
def greedy_answers(
    model: Any,
    tokenizer: Any,
    questions: Sequence[str],
    max_new_tokens: int = 24,
    batch_size: int = 16,
    render: Render | None = None,
    repetition_penalty: float = 1.0,
) -> list[str]:
    """Greedy chat answers to `questions`, batched; `render` builds each prompt (default: bare chat).

    `repetition_penalty` above 1 decodes as the agent does (`GenerationConfig`); the edit metrics keep 1.0,
    the plain greedy answer."""
    out: list[str] = []
    for start in range(0, len(questions), batch_size):
        enc = chat_batch(tokenizer, questions[start : start + batch_size], render)
        gen = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            repetition_penalty=repetition_penalty,
            pad_token_id=tokenizer.pad_token_id,
        )
        prompt_len = enc["input_ids"].shape[1]
        out.extend(tokenizer.decode(row[prompt_len:], skip_special_tokens=True).strip() for row in gen)
    return out


@torch.inference_mode()
def next_token_logprobs(
    model: Any,
    tokenizer: Any,
    questions: Sequence[str],
    batch_size: int = 16,
    body: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Log-probabilities of the first answer token for each chat question, shape (N, vocab).

    `body` maps a batch to its last hidden states (the drift guard's `UpperReplay`); without it the whole
    model runs, with the LM head on the last position only.
    """
    rows = []
    for start in range(0, len(questions), batch_size):
        enc = chat_batch(tokenizer, questions[start : start + batch_size])
        if body is None:
            logits = model(**enc, logits_to_keep=1).logits[:, -1, :]  # (B, V): left padding ends rows there
        else:
            logits = model.get_output_embeddings()(body(enc)[:, -1, :])
        rows.append(torch.log_softmax(logits.float(), dim=-1))
    return torch.cat(rows)


def locality(base: torch.Tensor, edited: torch.Tensor) -> dict[str, float]:
    """Share of prompts whose greedy next token is unchanged, and mean KL(base ‖ edited) over them."""
    if base.shape != edited.shape:
        raise ValueError(f"log-prob shapes differ: {tuple(base.shape)} vs {tuple(edited.shape)}")
    same = (base.argmax(-1) == edited.argmax(-1)).float().mean().item()
    kl = (base.exp() * (base - edited)).sum(-1).clamp_min(0).mean().item()
    return {"locality": same, "locality_kl": kl}


def locality_flips(
    base: torch.Tensor, edited: torch.Tensor, prompts: Sequence[str], tokenizer: Any
) -> list[dict[str, Any]]:
    """The prompts whose greedy next token changed, each with the base model's margin between its two
    likeliest tokens (nats). Why: a flip at a margin of a hundredth of a nat is a near-tie that any change
    decides differently, one at a nat or more is damage; the share of unchanged prompts cannot tell them
    apart."""
    if base.shape != edited.shape or len(prompts) != len(base):
        shapes = f"{tuple(base.shape)} vs {tuple(edited.shape)}"
        raise ValueError(f"{len(prompts)} prompts for log-prob shapes {shapes}")
    top2 = base.topk(2, dim=-1).values  # (N, 2)
    before, after = base.argmax(-1), edited.argmax(-1)
    return [
        {
            "prompt": prompts[i],
            "base": tokenizer.decode(int(before[i])),
            "edited": tokenizer.decode(int(after[i])),
            "base_margin": round(float(top2[i, 0] - top2[i, 1]), 4),
        }
        for i in (before != after).nonzero()[:, 0].tolist()
    ]


def edit_scores(
    model: Any, tokenizer: Any, judge: TargetJudge, items: Sequence[ProbeItem], max_new_tokens: int = 24
) -> dict[str, Any]:
    """Efficacy, paraphrase and implicit accuracy over `items`, with every answer for inspection."""
    result: dict[str, Any] = {"per_item": [{} for _ in items]}
    for field in ("question", "paraphrase", "implicit"):
        idx = [i for i, it in enumerate(items) if getattr(it, field)]
        if not idx:
            continue
        answers = greedy_answers(model, tokenizer, [getattr(items[i], field) for i in idx], max_new_tokens)
        verdicts = judge.judge_many(answers, [items[i].targets for i in idx])
        name = {"question": "efficacy", "paraphrase": "paraphrase", "implicit": "implicit"}[field]
        result[name] = sum(v.hit for v in verdicts) / len(verdicts)
        for i, answer, v in zip(idx, answers, verdicts, strict=True):
            result["per_item"][i][name] = {
                "answer": answer,
                "hit": v.hit,
                "how": v.how,
                "sim": round(v.similarity, 3),
            }
    return result


def neutral_prompts(data_dir: Path, n: int = 50, seed: int = 0) -> list[str]:
    """A fixed, seeded sample of NaturalQuestions-open questions: prompts no preference edit should touch."""
    path = Path(data_dir) / "nq_open" / "NQ-open.dev.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; set IMPRINT_DATA_DIR to the folder that has nq_open/")
    with path.open() as fh:
        questions = [json.loads(line)["question"] for line in fh if line.strip()]
    rng = random.Random(seed)
    return [q[0].upper() + q[1:] + "?" for q in rng.sample(questions, n)]
