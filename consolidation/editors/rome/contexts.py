"""The contexts a ROME key is averaged over: text placed before the prompt, or earlier chat turns placed
before the question's own turn.

Why both: a key is what the edited module reads at the subject's last token, and that depends on
everything before it. ROME's short prefixes vary only the start of the text. A served question often comes
after a long conversation, though, and a value fitted only at keys with the question's turn at the top of
the chat reads a different key there: PrefEval's acknowledgment fell from 0.90 with no earlier turns to 0.25
after four (docs/results.md#prefeval-across-filler-turns). Chat contexts insert a few exchanges of plain text
between the system prompt and the question, rendered by the model's own chat template, so the key and the
v* fit also see the question as a later turn of a conversation.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from memory.errors import InvalidInput

SENTINEL = "\x00imprint-question\x00"  # stands for the question while the template's seams are found
MIN_PARAGRAPH_CHARS = 200  # shorter lines are headings, captions and list items, not an exchange
POOL_PARAGRAPHS = 4000  # the chat contexts' paragraphs are drawn from this many, seeded


@dataclass(frozen=True)
class KeyContext:
    """`text` inserted into a prompt right after the last `anchor` before the subject; an empty anchor
    (or one the prompt lacks: not a chat prompt) puts it at the start, as ROME's prefixes are."""

    text: str
    anchor: str = ""

    def place(self, prompt: str, subject_end: int) -> tuple[str, int]:
        """The prompt with this context in it, and how far the subject moved (characters)."""
        at = prompt.rfind(self.anchor, 0, subject_end) if self.anchor else -1
        at = at + len(self.anchor) if at >= 0 else 0
        return prompt[:at] + self.text + prompt[at:], len(self.text)


def contexts_for(prompt: str, subject_end: int, contexts: Sequence[KeyContext]) -> list[tuple[str, int]]:
    """The bare prompt, then each context's version of it: (text, characters the subject moved)."""
    return [(prompt, 0)] + [c.place(prompt, subject_end) for c in contexts]


def exchange(paragraph: str) -> tuple[str, str]:
    """A paragraph as one chat exchange: its first sentence asked, the rest answered."""
    head, sep, tail = paragraph.partition(". ")
    return (head + ".", tail) if sep and tail else ("Tell me about this.", paragraph)


def as_turns(exchanges: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """(question, answer) pairs as alternating user and assistant chat messages."""
    return [
        m for q, a in exchanges for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})
    ]


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def chat_context(tokenizer: Any, exchanges: Sequence[tuple[str, str]]) -> KeyContext | None:
    """`exchanges` as earlier turns of a chat, in the tokenizer's template: the text that the template puts
    between the system prompt and the question's turn, anchored at what opens a user turn's content.

    Found by rendering a sentinel question with and without the exchanges, so no template is hard-coded.
    None when the template does not render earlier turns by insertion (the caller then has no chat
    context) or the tokenizer has no template."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    turns = as_turns(exchanges)
    question = {"role": "user", "content": SENTINEL}
    alone: str = tokenizer.apply_chat_template([question], tokenize=False)
    after: str = tokenizer.apply_chat_template([*turns, question], tokenize=False)
    at = min(_common_prefix(alone, after), alone.index(SENTINEL))  # where the turns go in `alone`
    tail = len(alone) - at
    if len(after) <= len(alone) or after[len(after) - tail :] != alone[at:]:
        return None
    block = after[at : len(after) - tail]
    # the anchor: what precedes a user turn's content whatever came before (the end of the system prompt
    # in `alone`, the end of the last inserted exchange in `block`), e.g. "<|im_end|>\n<|im_start|>user\n"
    anchor_len = _common_prefix(alone[:at][::-1], block[::-1])
    if anchor_len == 0:
        return None
    return KeyContext(text=block, anchor=alone[at - anchor_len : at])


def chat_contexts(
    tokenizer: Any, paragraphs: Iterable[str], n: int, turns: int, max_chars: int, seed: int
) -> list[KeyContext]:
    """`n` chat contexts of `turns` exchanges each, made of plain-text paragraphs cut to `max_chars`,
    drawn with a private seeded generator from the first `POOL_PARAGRAPHS` long ones: deterministic edits."""
    if n <= 0 or turns <= 0:
        return []
    pool: list[str] = []
    for paragraph in paragraphs:
        if len(paragraph) >= MIN_PARAGRAPH_CHARS:
            pool.append(paragraph)
            if len(pool) >= POOL_PARAGRAPHS:
                break
    if len(pool) < n * turns:
        raise InvalidInput(
            f"chat contexts need {n * turns} paragraphs of ≥ {MIN_PARAGRAPH_CHARS} characters, "
            f"found {len(pool)}"
        )
    picked = random.Random(seed).sample(pool, n * turns)
    out: list[KeyContext] = []
    for i in range(n):
        pairs = [exchange(p[:max_chars]) for p in picked[i * turns : (i + 1) * turns]]
        context = chat_context(tokenizer, pairs)
        if context is None:
            return []
        out.append(context)
    return out
