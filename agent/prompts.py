"""Prompt assembly: the recalled preferences go into the system prompt, before the conversation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.llm import Message

BASE_SYSTEM = "You are a helpful assistant. Give concrete, specific suggestions."
MEMORY_INTRO = "Earlier, the user told you:"
MEMORY_OUTRO = "Keep this in mind and tailor your answer to it."


def system_prompt(memory_lines: Sequence[str]) -> str:
    """The system prompt: base instructions, plus the user's recalled words when there are any."""
    if not memory_lines:
        return BASE_SYSTEM
    return " ".join([BASE_SYSTEM, MEMORY_INTRO, *memory_lines, MEMORY_OUTRO])


def build_messages(memory_lines: Sequence[str], history: Sequence[Message], user_text: str) -> list[Message]:
    """Chat messages for the model: system prompt, the thread's recent turns, then the new user turn."""
    return [
        {"role": "system", "content": system_prompt(memory_lines)},
        *history,
        {"role": "user", "content": user_text},
    ]


def recall_context(tokenizer: Any, memory_lines: Sequence[str]) -> str:
    """The system turn that carries `memory_lines`, rendered as every prompt with them begins: the text an
    edit holds in place (`EditRequest.held_contexts`) so the weights leave the recalled words as they read."""
    text: str = tokenizer.apply_chat_template(
        [{"role": "system", "content": system_prompt(memory_lines)}], tokenize=False
    )
    return text
