"""imprint's own chat turn: the reply together with the memories that shaped it."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
