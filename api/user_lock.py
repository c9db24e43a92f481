"""One writer per user: routes that rewrite a user's weights or erase them take the same lock a
consolidation run holds, so a rollback or a deletion never interleaves with a commit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from api.runtime import Runtime


@contextmanager
def user_lock(rt: Runtime, user_id: str) -> Iterator[None]:
    """Hold `user_id`'s consolidation lock (raises `UserBusy` if a run holds it); a runtime without
    consolidation has no other writer to wait for."""
    if rt.consolidation is None:
        yield
        return
    with rt.consolidation.locks.hold(user_id):
        yield
