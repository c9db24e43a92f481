"""The run log and the absorbed-observation log, on real SQLite files: lifecycle of a run, runs left by a
dead process marked interrupted, and absorbed observations per version."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from consolidation.absorbed import AbsorbedLog
from consolidation.runs import DONE, FAILED, INTERRUPTED, QUEUED, RUNNING, RunLog
from memory.errors import NotFound


def test_a_run_goes_from_queued_to_done_and_is_listed_newest_first(tmp_path: Path) -> None:
    log = RunLog(tmp_path / "c.sqlite")
    first = log.create("ana", "manual")
    assert first.status == QUEUED and first.started is None
    log.start(first.id)
    assert log.get(first.id).status == RUNNING
    log.finish(first.id, {"committed": 2})
    done = log.get(first.id)
    assert done.status == DONE and done.result == {"committed": 2} and done.finished is not None
    second = log.create("ana", "api")
    log.fail(second.id, "boom")
    assert log.get(second.id).status == FAILED and log.get(second.id).error == "boom"
    log.create("bo", "scheduled")
    assert [r.id for r in log.list("ana")] == [second.id, first.id]
    assert len(log.list()) == 3 and log.delete_user("ana") == 2 and len(log.list()) == 1
    with pytest.raises(NotFound):
        log.get("nope")
    with pytest.raises(NotFound):
        log.start("nope")
    log.close()


def test_runs_of_a_dead_process_are_marked_interrupted_and_live_ones_are_not(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    script = (
        "import sys; from consolidation.runs import RunLog; "
        "log = RunLog(sys.argv[1]); run = log.create('ana', 'manual'); log.start(run.id); print(run.id)"
    )
    dead = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    ).stdout.strip()
    log = RunLog(path)
    mine = log.create("bo", "manual")  # queued by this (live) process
    assert log.interrupt_stale() == 1
    assert log.get(dead).status == INTERRUPTED and log.get(mine.id).status == QUEUED
    log.close()


def test_absorbed_observations_are_kept_per_version(tmp_path: Path) -> None:
    absorbed = AbsorbedLog(tmp_path / "c.sqlite")
    absorbed.add("ana", ["o1", "o2"], 1)
    absorbed.add("ana", ["o3"], 2)
    absorbed.add("ana", ["o2"], 2)  # absorbed again into a later version: the later one holds it
    absorbed.add("bo", ["x"], 1)
    assert absorbed.by_version("ana") == {1: ["o1"], 2: ["o2", "o3"]}
    assert absorbed.delete_user("ana") == 3 and absorbed.by_version("ana") == {}
    assert absorbed.by_version("bo") == {1: ["x"]}
    absorbed.close()
