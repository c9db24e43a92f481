"""The history ledger as an index: which records a user still has, and which ids have any entry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memory.history import Event, History


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    h = History(tmp_path / "history.sqlite")
    yield h
    h.close()


def test_live_records_follow_the_last_event(history: History) -> None:
    history.record("r1", "alice", Event.CREATED, None, {"v": 1})
    history.record("r2", "alice", Event.CREATED, None, {"v": 2})
    history.record("r3", "bob", Event.CREATED, None, {"v": 3})
    history.record("r1", "alice", Event.STATUS, {"v": 1}, {"v": 1})
    assert history.live_records("alice") == ["r2", "r1"]  # least recently changed first
    history.record("r1", "alice", Event.DELETED, {"v": 1}, None)
    assert history.live_records("alice") == ["r2"]
    history.record("r1", "alice", Event.CREATED, None, {"v": 4})  # the id stored again after deletion
    assert history.live_records("alice") == ["r2", "r1"]
    assert history.live_records("bob") == ["r3"]
    assert history.live_records("carol") == []


def test_recorded_spans_more_ids_than_one_query_binds(history: History) -> None:
    ids = [f"r{i}" for i in range(1200)]
    history.record_many((rid, "alice", Event.CREATED, None, None, "") for rid in ids[::2])
    assert history.recorded(ids) == set(ids[::2])
    assert history.recorded([]) == set()
