"""`GET /v1/users/{user_id}/memories`: what imprint has observed about a user."""

from __future__ import annotations

from fastapi import APIRouter, Query

from api.deps import StoreDep
from api.schemas import ErrorPublic, MemoryList, MemoryPublic
from memory.errors import InvalidInput
from memory.observations import Status

router = APIRouter(prefix="/v1/users", tags=["memories"])


@router.get("/{user_id}/memories", response_model=MemoryList, responses={422: {"model": ErrorPublic}})
def list_memories(user_id: str, store: StoreDep, status: str | None = Query(default=None)) -> MemoryList:
    """The user's observations, oldest first, optionally only those with `status`."""
    wanted: Status | None = None
    if status is not None:
        try:
            wanted = Status(status)
        except ValueError:
            raise InvalidInput(f"status {status!r} is not one of {[s.value for s in Status]}") from None
    memories = [MemoryPublic.of(o) for o in store.list(user_id, status=wanted)]
    return MemoryList(user_id=user_id, count=len(memories), memories=memories)
