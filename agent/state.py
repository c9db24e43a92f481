"""Typed state of one conversational turn in the agent graph.

Nodes return only the fields they change (LangGraph merges them); `messages` accumulates across turns of a
thread through the `add_messages` reducer and is what the SQLite checkpointer persists.
"""

from __future__ import annotations

from typing import Annotated, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages


class RecalledMemory(TypedDict):
    """An observation placed in this turn's prompt (kept in state so callers can show why)."""

    id: str
    line: str
    similarity: float


class TurnState(TypedDict, total=False):
    user_id: str
    thread_id: str
    messages: Annotated[list[AnyMessage], add_messages]
    recalled: list[RecalledMemory]
    reply: str
    turn: int  # index of the current user turn within the thread (0-based)
    prompt_tokens: int  # the whole prompt of this turn: system, recalled memory, history, message
    completion_tokens: int
