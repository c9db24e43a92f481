"""A user's weight memory: its versions with provenance and drift reports, and rolling back."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from memory.weights.ledger import VersionInfo


class EditVersionPublic(BaseModel):
    version: int
    parent: int | None
    created_at: str
    status: str = Field(description="committed (in force) or reverted.")
    in_force: bool
    editor: str
    settings: dict[str, Any]
    requests: list[dict[str, Any]] = Field(description="The edit requests: prompts, targets, observations.")
    metrics: dict[str, Any]
    drift: dict[str, Any] | None = Field(description="The drift guard's report at commit time.")
    seconds: float

    @classmethod
    def of(cls, v: VersionInfo) -> EditVersionPublic:
        return cls(
            version=v.version,
            parent=v.parent,
            created_at=v.created_at,
            status=v.status,
            in_force=v.in_force,
            editor=v.editor,
            settings=v.settings,
            requests=v.requests,
            metrics=v.metrics,
            drift=v.drift,
            seconds=v.seconds,
        )


class EditList(BaseModel):
    user_id: str
    head: int = Field(description="The version in force; 0 is the base model.")
    versions: list[EditVersionPublic]


class RollbackRequest(BaseModel):
    version: int = Field(
        ge=0, le=2**31 - 1, description="The version to put back in force; 0 = the base model."
    )


class RollbackPublic(BaseModel):
    user_id: str
    head: int
    reconciled: int = Field(description="Observations whose status followed the rollback.")
