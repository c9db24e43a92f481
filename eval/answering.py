"""Answer many chat prompts fast on a CPU: batched greedy decoding, one user's weights at a time.

Why grouping: a batch runs under one weight memory, so prompts of the base model (methods without weights)
are batched across items, while an edited user's prompts are batched among themselves. Why a token budget
per batch rather than a fixed size: PrefEval prompts with ten filler turns run to thousands of tokens, and a
fixed batch of those would pad and attend over far more than the machine's memory should hold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.llm import Message
from consolidation.metrics import greedy_answers
from eval.workspace import Workspace


@dataclass(frozen=True)
class Prompt:
    """One question to answer: its chat messages and whose weights are active (None: the base model)."""

    key: str
    messages: list[Message] = field(hash=False)
    weights_user: str | None = None


@dataclass(frozen=True)
class Decoding:
    """How every method's answers are decoded: greedy, with the agent's repetition penalty."""

    max_new_tokens: int = 48
    repetition_penalty: float = 1.1  # the agent's default (agent/llm.py): the 135M model loops without it
    max_batch: int = 16
    max_batch_tokens: int = 12_000  # prompt tokens per batch (rows × longest prompt)


def render(tokenizer: Any, messages: Sequence[Message]) -> str:
    """The chat template's text for `messages`, ending with the assistant's turn header."""
    text: str = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    return text


def _batches(lengths: Sequence[int], order: Sequence[int], decoding: Decoding) -> list[list[int]]:
    """Consecutive runs of `order` (indices sorted by length) within the batch size and token budget."""
    out: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = max([lengths[j] for j in current] + [lengths[i]])
        if current and (
            len(current) >= decoding.max_batch or longest * (len(current) + 1) > decoding.max_batch_tokens
        ):
            out.append(current)
            current = []
        current.append(i)
    if current:
        out.append(current)
    return out


def answer_prompts(
    workspace: Workspace,
    prompts: Sequence[Prompt],
    decoding: Decoding,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, str]:
    """Greedy answers for `prompts`, keyed by `Prompt.key`; `on_batch(n)` after each batch of n answers."""
    tokenizer = workspace.tokenizer
    texts = [render(tokenizer, p.messages) for p in prompts]
    # the same text under the same weights has the same greedy answer: ask it once (PrefEval's `none` and
    # `edit` methods see no reveal, so their prompts repeat across the three sets)
    unique: dict[tuple[str | None, str], int] = {}
    for i, p in enumerate(prompts):
        unique.setdefault((p.weights_user, texts[i]), i)
    lengths = {i: len(tokenizer(texts[i], add_special_tokens=False)["input_ids"]) for i in unique.values()}
    groups: dict[str | None, list[int]] = {}
    for (user, _), i in unique.items():
        groups.setdefault(user, []).append(i)
    answered: dict[int, str] = {}
    for user, members in groups.items():
        order = sorted(members, key=lambda i: lengths[i])  # similar lengths together: little padding
        with workspace.applied(user):
            for batch in _batches([lengths.get(i, 0) for i in range(len(prompts))], order, decoding):
                got = greedy_answers(
                    workspace.model,
                    tokenizer,
                    [texts[i] for i in batch],
                    max_new_tokens=decoding.max_new_tokens,
                    batch_size=len(batch),
                    render=lambda text: text,
                    repetition_penalty=decoding.repetition_penalty,
                )
                answered.update(zip(batch, got, strict=True))
                if on_batch is not None:
                    on_batch(len(batch))
    return {p.key: answered[unique[(p.weights_user, texts[i])]] for i, p in enumerate(prompts)}
