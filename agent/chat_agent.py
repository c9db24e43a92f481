"""`ChatAgent`: the one entry point for a chat turn, used by the CLI, the HTTP service and the demo.

It validates input before anything runs (so a bad request writes nothing: no checkpoint, no observation),
then drives the compiled graph for the user's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver

from agent.graph import GraphDeps, as_chat, build_graph
from agent.llm import Message
from agent.state import RecalledMemory
from agent.threads import thread_key
from memory.ids import validate_record_id, validate_text, validate_user_id

log = logging.getLogger(__name__)

DEFAULT_THREAD = "default"
# a turn's thread is written once, when the turn ends, not after every step: per-step checkpoint writes
# competed with generation for the CPU and cost ~3% of a turn on 2 cores (`imprint bench chat`)
TURN_DURABILITY: Literal["exit"] = "exit"

# what a caller may change for one turn (min_new_tokens: benchmarks force equal-length answers)
TURN_OVERRIDES = frozenset({"max_new_tokens", "min_new_tokens", "temperature"})


@dataclass
class TurnResult:
    """What one turn produced."""

    user_id: str
    thread_id: str
    turn: int
    reply: str
    recalled: list[RecalledMemory] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class TurnEvent:
    """A streamed piece of a turn: tokens first, then one final event carrying the result."""

    token: str = ""
    result: TurnResult | None = None


class ChatAgent:
    """Runs turns of the recall → respond → observe graph for (user, thread) pairs."""

    def __init__(self, deps: GraphDeps, checkpointer: BaseCheckpointSaver, max_message_chars: int) -> None:
        self.deps = deps
        self.checkpointer = checkpointer
        self.max_message_chars = max_message_chars
        self.graph = build_graph(deps, checkpointer)

    def check(self, user_id: str, text: str, thread_id: str = DEFAULT_THREAD) -> None:
        """Raise `InvalidInput` for a turn `stream` would refuse, before anything runs (a streaming
        response must fail with a 4xx before its first byte, not mid-stream)."""
        self._prepare(user_id, text, thread_id, {})

    def _prepare(
        self, user_id: str, text: str, thread_id: str, generation: dict[str, Any], stream_tokens: bool = True
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        user_id = validate_user_id(user_id)
        thread_id = validate_record_id(thread_id, what="thread id")
        text = validate_text(text, self.max_message_chars, what="message")
        unknown = set(generation) - TURN_OVERRIDES
        if unknown:
            raise ValueError(f"per-turn generation overrides {sorted(unknown)} are not supported")
        config = {
            "configurable": {
                "thread_id": thread_key(user_id, thread_id),
                "generation": generation,
                "stream_tokens": stream_tokens,
            }
        }
        inputs = {"user_id": user_id, "thread_id": thread_id, "messages": [("user", text)]}
        return inputs, config

    def stream(
        self,
        user_id: str,
        text: str,
        thread_id: str = DEFAULT_THREAD,
        generation: dict[str, Any] | None = None,
    ) -> Iterator[TurnEvent]:
        """Run one turn, yielding tokens as they are generated and then the turn's result.

        `generation` overrides the deployment's decoding for this turn only (`max_new_tokens`,
        `temperature`), as an OpenAI-style request asks.
        """
        inputs, config = self._prepare(user_id, text, thread_id, dict(generation or {}))
        final: dict[str, Any] = {}
        for mode, chunk in self.graph.stream(
            inputs, config, stream_mode=["custom", "values"], durability=TURN_DURABILITY
        ):
            if mode == "custom" and "token" in chunk:
                yield TurnEvent(token=chunk["token"])
            elif mode == "values":
                final = chunk
        yield TurnEvent(result=_result(inputs, final))

    def chat(
        self,
        user_id: str,
        text: str,
        thread_id: str = DEFAULT_THREAD,
        generation: dict[str, Any] | None = None,
    ) -> TurnResult:
        """Run one turn and return its result (generated whole: nothing is streamed)."""
        inputs, config = self._prepare(user_id, text, thread_id, dict(generation or {}), stream_tokens=False)
        return _result(inputs, self.graph.invoke(inputs, config, durability=TURN_DURABILITY))

    def history(self, user_id: str, thread_id: str = DEFAULT_THREAD) -> list[Message]:
        """The thread's messages so far, oldest first (empty for a new thread)."""
        user_id = validate_user_id(user_id)
        thread_id = validate_record_id(thread_id, what="thread id")
        snap = self.graph.get_state({"configurable": {"thread_id": thread_key(user_id, thread_id)}})
        return as_chat(snap.values.get("messages", []))

    def flush(self) -> None:
        """Wait until every observed turn is stored."""
        self.deps.observer.flush()


def _result(inputs: dict[str, Any], final: dict[str, Any]) -> TurnResult:
    """The turn's result from the graph's final state."""
    return TurnResult(
        user_id=inputs["user_id"],
        thread_id=inputs["thread_id"],
        turn=int(final.get("turn", 0)),
        reply=str(final.get("reply", "")),
        recalled=list(final.get("recalled", [])),
        prompt_tokens=int(final.get("prompt_tokens", 0)),
        completion_tokens=int(final.get("completion_tokens", 0)),
    )
