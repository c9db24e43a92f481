"""The OpenAI chat-completions shapes imprint accepts and returns (the subset a chat client uses).

Fields imprint does not act on (`top_p`, `stop`, `presence_penalty`, ...) are accepted and ignored, as
OpenAI-compatible servers commonly do, so that existing clients work unchanged.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import UserField


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class MessageIn(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(default="imprint", description="Ignored: the deployment serves one model.")
    messages: list[MessageIn] = Field(
        min_length=1,
        description="The conversation; its last message must be the user's. imprint keeps each thread's "
        "history itself, so only that last message is the new turn.",
    )
    user: UserField
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    n: Literal[1] = 1
    metadata: dict[str, str] | None = Field(
        default=None, description="`thread_id` here names the conversation thread (or use X-Imprint-Thread)."
    )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class RecalledLine(BaseModel):
    id: str
    line: str
    similarity: float


class ImprintInfo(BaseModel):
    """What imprint adds to an OpenAI response: where the answer's memory came from."""

    thread_id: str
    turn: int
    recalled: list[RecalledLine]
    weight_version: int = Field(description="The user's weight-memory version in force (0: base model).")


class Completion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    imprint: ImprintInfo


class ModelPublic(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "imprint"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelPublic]
