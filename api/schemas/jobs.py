"""Consolidation jobs: one run of promote → edit → verify → drift guard → commit for a user."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from api.schemas.common import iso
from consolidation.runs import Run


class JobPublic(BaseModel):
    id: str
    user_id: str
    trigger: str = Field(description="api, manual or scheduled.")
    status: str = Field(description="queued, running, done, failed, interrupted or skipped.")
    created_at: str
    started_at: str | None
    finished_at: str | None
    result: dict[str, Any] | None = Field(
        description="promoted, committed, rejected and why, per preference."
    )
    error: str | None

    @classmethod
    def of(cls, run: Run, user_id: str) -> JobPublic:
        result = dict(run.result) if run.result is not None else None
        if result is not None:
            result["user_id"] = user_id  # never the stored (tenant-scoped) id
        return cls(
            id=run.id,
            user_id=user_id,
            trigger=run.trigger,
            status=run.status,
            created_at=iso(run.created) or "",
            started_at=iso(run.started),
            finished_at=iso(run.finished),
            result=result,
            error=run.error,
        )


class UserForgotten(BaseModel):
    user_id: str
    observations: int
    history_entries: int
    weight_versions: int
    threads: int
    jobs: int
