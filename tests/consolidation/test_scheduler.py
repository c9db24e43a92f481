"""The consolidation service on the real model: the periodic schedule persists in SQLite across restarts,
submitted runs execute in the background with their record kept, and a chat served for another user while a
consolidation edits the shared model gets exactly the base model's logits."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import torch

from consolidation.runs import DONE, QUEUED, RUNNING, RunLog
from consolidation.scheduler import PERIODIC_JOB, ConsolidationService
from tests.consolidation.world import USER, World, observe

pytestmark = pytest.mark.slow


def _service(w: World, tmp: Path, name: str = "default") -> ConsolidationService:
    return ConsolidationService(w.consolidator, RunLog(tmp / "runs.sqlite"), tmp / "locks", name=name)


def test_the_schedule_survives_a_restart(world: World, tmp_path: Path) -> None:
    store = tmp_path / "schedule.sqlite"
    first = _service(world, tmp_path)
    first.start(store, interval_minutes=30)
    planned = first.next_periodic_run()
    first.shutdown()
    assert planned is not None
    rows = sqlite3.connect(store).execute("SELECT id, next_run_time FROM apscheduler_jobs").fetchall()
    assert [r[0] for r in rows] == [f"{PERIODIC_JOB}:default"]  # kept on disk after shutdown

    again = _service(world, tmp_path)
    again.start(store, interval_minutes=30)  # a restart replaces the job: still exactly one
    try:
        rows = sqlite3.connect(store).execute("SELECT id FROM apscheduler_jobs").fetchall()
        assert [r[0] for r in rows] == [f"{PERIODIC_JOB}:default"]
        assert again.next_periodic_run() is not None
    finally:
        again.shutdown()
    with pytest.raises(ValueError):
        _service(world, tmp_path).start(store, interval_minutes=-1)

    on_demand = _service(world, tmp_path)
    on_demand.start(store, interval_minutes=0)  # a restart with the schedule off drops the periodic job
    try:
        assert on_demand.running and on_demand.next_periodic_run() is None
        assert sqlite3.connect(store).execute("SELECT id FROM apscheduler_jobs").fetchall() == []
    finally:
        on_demand.shutdown()
    assert not on_demand.running


def test_a_submitted_run_executes_while_another_user_is_served_the_base_model(
    world: World, tmp_path: Path
) -> None:
    w = world
    observe(w, "music", "jazz piano", "s1", 1)
    observe(w, "music", "jazz records", "s2", 2)
    service = _service(w, tmp_path)
    service.start(tmp_path / "schedule.sqlite", interval_minutes=60)
    tok = w.lm.tokenizer
    enc = dict(tok(["When it comes to music, what do I prefer? I think"], return_tensors="pt"))
    with torch.inference_mode():
        base = w.lm.model(**enc).logits
    try:
        run = service.submit(USER)
        assert run.status == QUEUED
        served, differed, seen_running = 0, 0, False
        deadline = time.monotonic() + 600
        while service.runs.get(run.id).status in (QUEUED, RUNNING) and time.monotonic() < deadline:
            seen_running = seen_running or service.runs.get(run.id).status == RUNNING
            with w.weights.applied("someone-else"), torch.inference_mode():
                logits = w.lm.model(**enc).logits  # a chat turn of a user without edits, mid-consolidation
            served += 1
            differed += int(not torch.equal(logits, base))
        done = service.runs.get(run.id)
    finally:
        service.shutdown()
    assert done.status == DONE and done.result is not None and done.result["committed"] == 1, done
    assert seen_running and served > 10  # the turns really overlapped the consolidation
    assert differed == 0  # no editing hook, capture or δ reached another thread's forward pass
