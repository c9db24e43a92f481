"""Request and response bodies: separate `...Request` (what a client sends) and `...Public` (what it gets)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from memory.observations import Observation


class ChatRequest(BaseModel):
    message: str = Field(description="The user's turn.")
    thread_id: str = Field(
        default="default", description="Conversation thread; threads persist across restarts."
    )


class RecalledPublic(BaseModel):
    id: str
    line: str
    similarity: float


class ChatPublic(BaseModel):
    user_id: str
    thread_id: str
    turn: int
    reply: str
    recalled: list[RecalledPublic]


class MemoryPublic(BaseModel):
    id: str
    user_id: str
    evidence: str
    aspect: str
    value: str
    polarity: str
    confidence: float
    thread_id: str
    turn: int
    explicit: bool
    status: str
    created_at: float

    @classmethod
    def of(cls, obs: Observation) -> MemoryPublic:
        return cls(**obs.to_dict())


class MemoryList(BaseModel):
    user_id: str
    count: int
    memories: list[MemoryPublic]


class ErrorPublic(BaseModel):
    detail: str
