"""Memories, Mem0-style: add (explicit, or extracted from messages), list, get, update, delete, history
and search. Records are named by id alone, as in Mem0; a record of another tenant is a 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.auth import Principal
from api.deps import PrincipalDep, RuntimeDep, StoreDep
from api.schemas.common import ERRORS, RecordPath, UserQuery
from api.schemas.memories import (
    Deleted,
    HistoryPublic,
    MemoryCreate,
    MemoryEvent,
    MemoryEvents,
    MemoryList,
    MemoryPublic,
    MemorySearch,
    MemoryUpdate,
    ScoredMemory,
    SearchResults,
)
from memory.errors import InvalidInput, NotFound
from memory.ids import validate_text
from memory.observations import Observation, Polarity, Status
from memory.store import ObservationStore

router = APIRouter(prefix="/v1/memories", tags=["memories"])
StatusName = Annotated[
    Status | None, Query(description="Only memories with this status (pending, in_weights, ...).")
]


def _owned(store: ObservationStore, principal: Principal, memory_id: str) -> tuple[str, str]:
    """(stored user id, public user id) of a memory this tenant owns; NotFound otherwise."""
    owner = store.owner(memory_id)
    if owner is None or not principal.owns(owner):
        raise NotFound(f"no memory {memory_id!r}")
    return owner, principal.public(owner)


@router.post("", response_model=MemoryEvents, status_code=status.HTTP_201_CREATED, responses=ERRORS)
def add_memories(body: MemoryCreate, rt: RuntimeDep, principal: PrincipalDep) -> MemoryEvents:
    """Store one explicit memory, or the preferences extracted from the user turns of `messages`."""
    user = principal.user(body.user_id)
    if (body.messages is None) == (body.memory is None):
        raise InvalidInput("give exactly one of `messages` (to extract from) or `memory` (explicit)")
    new: list[Observation] = []
    if body.memory is not None:
        m = body.memory
        polarity = Polarity(m.polarity)
        evidence = m.evidence or f"{m.aspect}: {polarity.value} {m.value}"
        new.append(
            Observation(
                user_id=user,
                evidence=evidence,
                aspect=m.aspect,
                value=m.value,
                polarity=polarity,
                confidence=m.confidence,
                thread_id=body.thread_id,
                explicit=True,
            )
        )
    else:
        messages = body.messages or []
        limit = rt.settings.max_messages_per_request
        if not messages or len(messages) > limit:
            raise InvalidInput(f"`messages` must hold 1 to {limit} messages, got {len(messages)}")
        turns = [m.content for m in messages if m.role == "user"]
        for text in turns:
            validate_text(text, rt.settings.max_message_chars, what="message")
        for turn, candidates in enumerate(rt.extractor.extract_many(turns)):
            new.extend(Observation.from_candidate(user, c, body.thread_id, turn) for c in candidates)
    stored = rt.store.add_many(new)
    return MemoryEvents(results=[MemoryEvent(id=o.id, memory=o.summary(), event="ADD") for o in stored])


@router.get("", response_model=MemoryList, responses=ERRORS)
def list_memories(
    user_id: UserQuery,
    store: StoreDep,
    principal: PrincipalDep,
    status: StatusName = None,
) -> MemoryList:
    """A user's memories, oldest first, optionally only those with `status`."""
    found = store.list(principal.user(user_id), status=status)
    return MemoryList(user_id=user_id, count=len(found), results=[MemoryPublic.of(o, user_id) for o in found])


@router.post("/search", response_model=SearchResults, responses=ERRORS)
def search_memories(body: MemorySearch, store: StoreDep, principal: PrincipalDep) -> SearchResults:
    """A user's memories most similar to `query`, best first, with cosine similarity as `score`."""
    wanted = Status(body.status) if body.status is not None else None
    hits = store.search(principal.user(body.user_id), body.query, k=body.top_k, status=wanted)
    return SearchResults(
        results=[
            ScoredMemory(**MemoryPublic.of(o, body.user_id).model_dump(), score=round(sim, 6))
            for o, sim in hits
        ]
    )


@router.get("/{memory_id}", response_model=MemoryPublic, responses=ERRORS)
def get_memory(memory_id: RecordPath, store: StoreDep, principal: PrincipalDep) -> MemoryPublic:
    owner, public = _owned(store, principal, memory_id)
    return MemoryPublic.of(store.get(owner, memory_id), public)


@router.put("/{memory_id}", response_model=MemoryPublic, responses=ERRORS)
def update_memory(
    memory_id: RecordPath, body: MemoryUpdate, store: StoreDep, principal: PrincipalDep
) -> MemoryPublic:
    """Change a memory's content; it is re-embedded, and the old content stays in its history."""
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise InvalidInput("nothing to update: give text, aspect, value, polarity or confidence")
    owner, public = _owned(store, principal, memory_id)
    evidence = changes.pop("text", None)
    updated = store.update(owner, memory_id, evidence=evidence, reason="updated through the API", **changes)
    return MemoryPublic.of(updated, public)


@router.delete("/{memory_id}", response_model=Deleted, responses=ERRORS)
def delete_memory(memory_id: RecordPath, store: StoreDep, principal: PrincipalDep) -> Deleted:
    """Remove a memory from retrieval (its history stays). A memory already in the weights stays there
    until the user's weight memory is rolled back: see `POST /v1/users/{id}/rollback`."""
    owner, _ = _owned(store, principal, memory_id)
    store.delete(owner, memory_id, reason="deleted through the API")
    return Deleted(message="memory deleted", id=memory_id)


@router.get("/{memory_id}/history", response_model=list[HistoryPublic], responses=ERRORS)
def memory_history(memory_id: RecordPath, store: StoreDep, principal: PrincipalDep) -> list[HistoryPublic]:
    """Every change of a memory, oldest first, including after its deletion."""
    owner, _ = _owned(store, principal, memory_id)
    return [HistoryPublic.of(e) for e in store.history(owner, memory_id)]
