"""The agent as a LangGraph `StateGraph`: recall → respond → observe.

Each node is a small closure over the component it needs; none of them builds heavy objects. `respond`
streams tokens through LangGraph's custom stream channel so a caller can print them as they come, and
`observe` hands extraction to a background worker so the reply is never delayed by it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any, Protocol

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from agent.llm import ChatLM, GenerationConfig, Message, Usage
from agent.observer import Observer
from agent.prompts import build_messages
from agent.state import RecalledMemory, TurnState
from memory.recall import Recaller, format_memory_line


class UserWeights(Protocol):
    """The part of the weight memory the agent needs: run code under one user's delta."""

    def applied(self, user_id: str) -> AbstractContextManager[None]: ...


@dataclass
class GraphDeps:
    """What the nodes talk to; built once at start-up and handed in."""

    lm: ChatLM
    recaller: Recaller
    observer: Observer
    generation: GenerationConfig
    history_turns: int = 6
    weights: UserWeights | None = None  # None: every user gets the base model

    def user_weights(self, user_id: str) -> AbstractContextManager[None]:
        return self.weights.applied(user_id) if self.weights is not None else nullcontext()


def as_chat(messages: list[AnyMessage]) -> list[Message]:
    """LangChain messages as chat-template dicts (the thread stores no system messages; they are per turn)."""
    role = {"human": "user", "ai": "assistant", "system": "system"}
    return [{"role": role[m.type], "content": str(m.content)} for m in messages if m.type in role]


def generation_for(default: GenerationConfig, config: RunnableConfig | None) -> GenerationConfig:
    """The turn's decoding: the deployment's defaults, with a caller's per-turn overrides (`max_new_tokens`,
    `temperature`) from `config["configurable"]["generation"]`."""
    overrides = ((config or {}).get("configurable") or {}).get("generation") or {}
    return replace(default, **overrides) if overrides else default


def streams_tokens(config: RunnableConfig | None) -> bool:
    """Whether the caller reads the answer token by token (`config["configurable"]["stream_tokens"]`,
    default yes). A caller that only wants the whole answer turns it off: each streamed piece wakes the
    reading thread, which on 2 cores takes a core from generation (`imprint bench chat`)."""
    return bool(((config or {}).get("configurable") or {}).get("stream_tokens", True))


def build_graph(deps: GraphDeps, checkpointer: BaseCheckpointSaver | None = None) -> Any:
    """Compile the turn graph; with a checkpointer, threads persist across processes."""

    def recall(state: TurnState) -> dict[str, Any]:
        user_text = str(state["messages"][-1].content)
        hits = deps.recaller.recall(state["user_id"], user_text, deps.lm.count_tokens)
        recalled: list[RecalledMemory] = [
            {"id": h.observation.id, "line": format_memory_line(h.observation), "similarity": h.similarity}
            for h in hits
        ]
        return {"recalled": recalled}

    def respond(state: TurnState, config: RunnableConfig) -> dict[str, Any]:
        *earlier, current = state["messages"]
        history = as_chat(earlier)[-2 * deps.history_turns :] if deps.history_turns else []
        prompt = build_messages([r["line"] for r in state.get("recalled", [])], history, str(current.content))
        generation = generation_for(deps.generation, config)
        write = get_stream_writer()
        usage = Usage()
        # pieces go to the graph's stream from the generating thread itself; nobody streaming, no streamer
        on_text = (lambda piece: write({"token": piece})) if streams_tokens(config) else None
        with deps.user_weights(state["user_id"]):  # the user's weight memory, for this generation only
            reply = deps.lm.generate(prompt, generation, usage, on_text)
        return {
            "messages": [AIMessage(content=reply)],
            "reply": reply,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
        }

    def observe(state: TurnState) -> dict[str, Any]:
        turn = sum(1 for m in state["messages"] if isinstance(m, HumanMessage)) - 1
        user_text = str(state["messages"][-2].content)  # the human turn just answered
        deps.observer.submit(state["user_id"], state["thread_id"], turn, user_text)
        return {"turn": turn}

    graph = StateGraph(TurnState)
    graph.add_node("recall", recall)
    graph.add_node("respond", respond)
    graph.add_node("observe", observe)
    graph.add_edge(START, "recall")
    graph.add_edge("recall", "respond")
    graph.add_edge("respond", "observe")
    graph.add_edge("observe", END)
    return graph.compile(checkpointer=checkpointer)
