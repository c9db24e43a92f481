"""LangChain's `BaseChatModel` over imprint's personalised model.

Why: inside a LangGraph graph or any LangChain runnable, `model.invoke` / `model.stream` then answer as the
imprint agent would for the user: their recalled words in the system prompt (the same prompt form as
`agent.prompts.build_messages`) and their weight delta applied while the model generates.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, cast

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
)
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field, SkipValidation

from agent.graph import UserWeights
from agent.llm import ChatLM, GenerationConfig, Message
from agent.prompts import MEMORY_INTRO, MEMORY_OUTRO, system_prompt
from memory.errors import InvalidInput
from memory.ids import validate_user_id
from memory.recall import Recaller, format_memory_line

log = logging.getLogger(__name__)

_CHAT_ROLES = {
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "system": "system",
}


def as_chat(messages: Sequence[BaseMessage]) -> list[Message]:
    """LangChain messages as chat-template dicts; kinds the chat template has no role for are refused."""
    out: list[Message] = []
    for m in messages:
        if isinstance(m, HumanMessage):
            role: str | None = "user"
        elif isinstance(m, AIMessage):
            role = "assistant"
        elif isinstance(m, SystemMessage):
            role = "system"
        else:
            role = _CHAT_ROLES.get(m.role) if isinstance(m, ChatMessage) else None
        if role is None:
            raise InvalidInput(f"{type(m).__name__} has no role in the chat template; use human/ai/system")
        out.append({"role": role, "content": str(m.text)})
    return out


def with_memory(chat: list[Message], memory_lines: Sequence[str]) -> list[Message]:
    """One system message first, holding the recalled lines; the conversation follows unchanged.

    Without a caller's system message this is exactly `build_messages`'s prompt; with one, the caller's
    instructions replace the base ones and the memory is appended to them in the same words.
    """
    own = "\n".join(m["content"] for m in chat if m["role"] == "system")
    if not own:
        system = system_prompt(memory_lines)
    else:
        system = " ".join([own, MEMORY_INTRO, *memory_lines, MEMORY_OUTRO]) if memory_lines else own
    return [{"role": "system", "content": system}, *(m for m in chat if m["role"] != "system")]


def cut_at_stop(text: str, stop: Sequence[str] | None) -> str:
    """`text` up to the first occurrence of any stop string."""
    cuts = [i for s in stop or () if s and (i := text.find(s)) >= 0]
    return text[: min(cuts)] if cuts else text


def _until_stop(pieces: Iterable[str], stop: Sequence[str] | None) -> Iterator[str]:
    """Streamed `cut_at_stop`: text that may be the start of a stop string is held back until it is not."""
    stops = [s for s in stop or () if s]
    if not stops:
        yield from pieces
        return
    hold = max(len(s) for s in stops) - 1
    buffer = ""
    for piece in pieces:
        buffer += piece
        cut = cut_at_stop(buffer, stops)
        if len(cut) < len(buffer):
            if cut:
                yield cut
            return
        if len(buffer) > hold:
            yield buffer[: len(buffer) - hold]
            buffer = buffer[len(buffer) - hold :]
    if buffer:
        yield buffer


def _stripped(pieces: Iterable[str]) -> Iterator[str]:
    """Pieces whose concatenation is the whole text `.strip()`ped, as `ChatLM.generate` returns it.

    Trailing whitespace is held until more text follows, so a stream ending in a newline matches too.
    """
    held, started = "", False
    for piece in pieces:
        text = held + piece if started else (held + piece).lstrip()
        body = text.rstrip()
        held = text[len(body) :]
        if body:
            started = True
            yield body


def _in_context(make: Callable[[], Iterator[str]], scope: AbstractContextManager[None]) -> Iterator[str]:
    """Iterate `make()` inside `scope`, without `scope` leaking into the consumer's context.

    Why: a generator that simply enters `scope` sets its context variables (the active weight delta) in
    whichever context calls `next`, so the delta would stay active in the caller between chunks; and
    LangChain's async streaming calls `next` from executor threads in other contexts, where the reset
    fails. Entering `scope` and running every `next` in one private context avoids both.
    """
    ctx = contextvars.copy_context()
    ctx.run(scope.__enter__)
    pieces: Iterator[str] | None = None
    done = object()
    try:
        pieces = ctx.run(make)
        while (piece := ctx.run(next, pieces, done)) is not done:
            yield cast(str, piece)
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            ctx.run(close)
        ctx.run(scope.__exit__, None, None, None)


class ImprintChatModel(BaseChatModel):
    """The bundled model answering as one user's personalised assistant.

    `user_id` is the stored id (tenant-scoped where auth is on); `model.bind(user_id=...)` or
    `invoke(..., user_id=...)` answers for another user with the same instance.
    """

    lm: ChatLM
    user_id: str
    recaller: Recaller | None = None  # None: no recalled memory in the prompt
    weights: SkipValidation[UserWeights | None] = None  # None: every user gets the base model
    max_new_tokens: int = Field(default=160, gt=0)
    temperature: float = Field(default=0.0, ge=0.0)  # 0 = greedy, reproducible

    @property
    def _llm_type(self) -> str:
        return "imprint"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.lm.name,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
        }

    def build_prompt(self, messages: Sequence[BaseMessage], user_id: str | None = None) -> list[Message]:
        """The chat messages the model reads: recalled memory for the last human message, then the chat."""
        user = validate_user_id(self.user_id if user_id is None else user_id)
        chat = as_chat(messages)
        if not any(m["role"] != "system" for m in chat):
            raise InvalidInput("nothing to answer: the messages hold no human or ai turn")
        query = next((m["content"] for m in reversed(chat) if m["role"] == "user"), "")
        lines: list[str] = []
        if self.recaller is not None and query.strip():
            hits = self.recaller.recall(user, query, self.lm.count_tokens)
            lines = [format_memory_line(h.observation) for h in hits]
            log.debug("recalled %d observations of %s", len(lines), user)
        return with_memory(chat, lines)

    def _target(self, kwargs: dict[str, Any]) -> str:
        """The user to answer for; other call-time keywords have no meaning for this model."""
        user = kwargs.pop("user_id", None)
        if kwargs:
            log.debug("ignoring call options %s", sorted(kwargs))
        return validate_user_id(self.user_id if user is None else user)

    def _scope(self, user: str) -> AbstractContextManager[None]:
        return self.weights.applied(user) if self.weights is not None else nullcontext()

    def _config(self) -> GenerationConfig:
        return GenerationConfig(max_new_tokens=self.max_new_tokens, temperature=self.temperature)

    def _usage(self, prompt: list[Message], text: str) -> UsageMetadata:
        """Token counts: the templated prompt as the model reads it, and the answer's text."""
        read = int(self.lm.encode_chat(prompt).shape[-1])
        wrote = self.lm.count_tokens(text) if text else 0
        return {"input_tokens": read, "output_tokens": wrote, "total_tokens": read + wrote}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        user = self._target(kwargs)
        prompt = self.build_prompt(messages, user)
        with self._scope(user):
            text = cut_at_stop(self.lm.generate(prompt, self._config()), stop)
        message = AIMessage(
            content=text,
            usage_metadata=self._usage(prompt, text),
            response_metadata={"model_name": self.lm.name},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        user = self._target(kwargs)
        prompt = self.build_prompt(messages, user)
        cfg = self._config()
        raw = _in_context(lambda: self.lm.stream(prompt, cfg), self._scope(user))
        text = ""
        for piece in _until_stop(_stripped(raw), stop):
            text += piece
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager is not None:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk
        last = AIMessageChunk(
            content="",
            usage_metadata=self._usage(prompt, text),
            response_metadata={"model_name": self.lm.name},
            chunk_position="last",
        )
        yield ChatGenerationChunk(message=last)
