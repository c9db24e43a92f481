"""Memories, shaped like Mem0's REST API (`memory`, `user_id`, `results`, `event`, `score`), with
imprint's own fields (aspect, value, polarity, status) beside them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import UserField, iso
from memory.history import HistoryEntry
from memory.observations import Observation


class MessageText(BaseModel):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str


class ExplicitMemory(BaseModel):
    """A preference stated directly, as the client knows it (no extraction)."""

    aspect: str = Field(min_length=1, max_length=200, description="What it is about, e.g. 'diet'.")
    value: str = Field(min_length=1, max_length=500, description="e.g. 'vegetarian food'.")
    polarity: Literal["likes", "avoids", "is"] = "likes"
    evidence: str | None = Field(default=None, description="The user's own words; defaults to a summary.")
    confidence: float = Field(default=0.9, ge=0.0, le=1.0)


class MemoryCreate(BaseModel):
    user_id: UserField
    messages: list[MessageText] | None = Field(
        default=None, description="Raw conversation: preferences are extracted from the user's turns."
    )
    memory: ExplicitMemory | None = Field(default=None, description="Or one explicit memory.")
    thread_id: str = Field(default="api", description="The conversation these came from.")


class MemoryUpdate(BaseModel):
    text: str | None = Field(default=None, description="New evidence text (the user's words).")
    aspect: str | None = Field(default=None, min_length=1, max_length=200)
    value: str | None = Field(default=None, min_length=1, max_length=500)
    polarity: Literal["likes", "avoids", "is"] | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class MemorySearch(BaseModel):
    query: str
    user_id: UserField
    top_k: int = Field(default=5, ge=1, le=100)
    status: Literal["pending", "in_weights", "superseded", "rejected"] | None = None


class MemoryPublic(BaseModel):
    id: str
    memory: str = Field(description="How the preference reads, e.g. 'diet: likes vegetarian food'.")
    user_id: str
    evidence: str
    aspect: str
    value: str
    polarity: str
    confidence: float
    thread_id: str
    turn: int
    explicit: bool
    status: str = Field(description="pending (recalled), in_weights, superseded or rejected.")
    created_at: str

    @classmethod
    def of(cls, obs: Observation, user_id: str) -> MemoryPublic:
        fields = obs.to_dict()
        fields.update(memory=obs.summary(), user_id=user_id, created_at=iso(obs.created_at))
        return cls(**fields)


class ScoredMemory(MemoryPublic):
    score: float


class MemoryEvent(BaseModel):
    id: str
    memory: str
    event: Literal["ADD", "UPDATE", "DELETE"]


class MemoryEvents(BaseModel):
    results: list[MemoryEvent]


class MemoryList(BaseModel):
    user_id: str
    count: int
    results: list[MemoryPublic]


class SearchResults(BaseModel):
    results: list[ScoredMemory]


class HistoryPublic(BaseModel):
    memory_id: str
    event: str
    old_memory: str | None
    new_memory: str | None
    old: dict[str, object] | None
    new: dict[str, object] | None
    reason: str
    created_at: str

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryPublic:
        def line(d: dict[str, object] | None) -> str | None:
            if d is None:
                return None
            return f"{d.get('aspect')}: {d.get('polarity')} {d.get('value')}"

        old = _public(entry.old)
        new = _public(entry.new)
        return cls(
            memory_id=entry.record_id,
            event=entry.event.value,
            old_memory=line(old),
            new_memory=line(new),
            old=old,
            new=new,
            reason=entry.reason,
            created_at=iso(entry.at) or "",
        )


def _public(fields: dict[str, object] | None) -> dict[str, object] | None:
    """A history snapshot without the stored (tenant-scoped) user id."""
    return None if fields is None else {k: v for k, v in fields.items() if k != "user_id"}


class Deleted(BaseModel):
    message: str
    id: str
