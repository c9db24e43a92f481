"""Running consolidations: on demand and on a schedule, one at a time per user, every run recorded.

- `ConsolidationService.run_now` runs one user in the calling thread (the CLI); `submit` queues a run on
  the scheduler's worker threads and returns its record at once (the API's job id).
- `start` runs APScheduler in the background: a periodic job over users with pending observations, kept in
  a SQLite job store so the schedule survives restarts (one-off runs live in memory: a run queued by a
  process that died is marked interrupted, and the next periodic pass picks its user up again).
- One consolidation per user at a time, across threads and processes: an exclusive `flock` on a per-user
  lock file. A run that finds its user busy is recorded as `skipped`, not queued behind it.
- Overlaps and misfires: the periodic job has `max_instances=1` and `coalesce=True`, so a pass that is
  still running, or several missed while the service was down, give one pass, not a pile.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from consolidation.pipeline import Consolidator, Progress
from consolidation.runs import SKIPPED, Run, RunLog
from memory.ids import validate_user_id
from memory.observations import Status
from memory.openmp import pool_released_after

log = logging.getLogger(__name__)

PERIODIC_JOB = "consolidate-due-users"
_SERVICES: dict[str, ConsolidationService] = {}  # the persistent job names its service; this finds it


def _periodic(name: str) -> None:
    """The job the job store keeps (a module-level function: the store saves it by reference)."""
    service = _SERVICES.get(name)
    if service is None:
        log.warning("periodic consolidation %r fired with no service registered; skipped", name)
        return
    service.run_due()


class UserBusy(RuntimeError):
    """Another consolidation of the same user holds its lock."""


class UserLocks:
    """Exclusive per-user locks shared by every process using the same directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def hold(self, user_id: str) -> Iterator[None]:
        """Hold `user_id`'s lock for the block; `UserBusy` at once if someone else holds it."""
        fd = os.open(self.directory / f"{validate_user_id(user_id)}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserBusy(f"a consolidation of user {user_id!r} is already running") from None
            yield
        finally:
            os.close(fd)  # closing releases the lock


class ConsolidationService:
    """A consolidator with a run log, per-user locks and (after `start`) a background scheduler."""

    def __init__(
        self,
        consolidator: Consolidator,
        runs: RunLog,
        locks_dir: Path,
        name: str = "default",
    ) -> None:
        self.consolidator, self.runs, self.name = consolidator, runs, name
        self.locks = UserLocks(locks_dir)
        self._scheduler: Any = None
        stale = runs.interrupt_stale()
        if stale:
            log.warning("marked %d consolidation run(s) of a stopped process as interrupted", stale)

    # running

    def run_now(self, user_id: str, trigger: str = "manual", progress: Progress | None = None) -> Run:
        """Consolidate `user_id` in this thread; the finished run's record."""
        run = self.runs.create(user_id, trigger)
        return self.execute(run.id, progress)

    def execute(self, run_id: str, progress: Progress | None = None) -> Run:
        """Carry out a queued run: lock its user, consolidate, record the outcome (never raises for a
        failed consolidation: the run's record says what went wrong)."""
        run = self.runs.get(run_id)
        try:
            # the scheduler's worker lives on; its pool must not slow the turns that follow (memory/openmp.py)
            with self.locks.hold(run.user_id), pool_released_after():
                self.runs.start(run_id)
                result = self.consolidator.run(run.user_id, progress)
                self.runs.finish(run_id, result.to_dict())
        except UserBusy as exc:
            self.runs.fail(run_id, str(exc), SKIPPED)
        except Exception as exc:  # a run must end recorded, whatever broke
            log.exception("consolidation run %s of user %s failed", run_id, run.user_id)
            self.runs.fail(run_id, f"{type(exc).__name__}: {exc}")
        return self.runs.get(run_id)

    def submit(self, user_id: str, trigger: str = "api") -> Run:
        """Queue a run of `user_id` on the scheduler's workers; its record, still queued."""
        if self._scheduler is None:
            raise RuntimeError("the scheduler is not running; call start() first, or use run_now")
        run = self.runs.create(user_id, trigger)
        self._scheduler.add_job(
            self.execute, trigger="date", args=[run.id], id=f"run-{run.id}", jobstore="memory"
        )
        return run

    def due_users(self) -> list[str]:
        """Users with pending observations: the only ones a run could change."""
        store = self.consolidator.store
        return [u for u in store.users() if store.count(u, Status.PENDING) > 0]

    def run_due(self) -> list[Run]:
        """One periodic pass: consolidate every due user, one after another."""
        users = self.due_users()
        log.info("periodic consolidation: %d user(s) with pending observations", len(users))
        return [self.run_now(u, trigger="scheduled") for u in users]

    # scheduling

    def start(self, jobstore_path: Path, interval_minutes: float, workers: int = 1) -> None:
        """Run the periodic job (every `interval_minutes`; 0: none) and submitted runs in the background."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        if interval_minutes < 0:
            raise ValueError(
                f"interval_minutes must be 0 (no periodic job) or positive, got {interval_minutes}"
            )
        Path(jobstore_path).parent.mkdir(parents=True, exist_ok=True)
        _SERVICES[self.name] = self
        scheduler = BackgroundScheduler(
            jobstores={
                "default": SQLAlchemyJobStore(url=f"sqlite:///{Path(jobstore_path).resolve()}"),
                "memory": MemoryJobStore(),
            },
            executors={"default": ThreadPoolExecutor(max(1, workers))},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(60, int(interval_minutes * 60)),
            },
            timezone=UTC,
        )
        if interval_minutes == 0:  # on-demand runs only; a periodic job left by an earlier start is dropped
            scheduler.start(paused=True)
            if scheduler.get_job(f"{PERIODIC_JOB}:{self.name}"):
                scheduler.remove_job(f"{PERIODIC_JOB}:{self.name}")
            scheduler.resume()
            self._scheduler = scheduler
            log.info("consolidation scheduler: on demand only, job store %s", jobstore_path)
            return
        scheduler.add_job(
            _periodic,
            trigger="interval",
            minutes=interval_minutes,
            args=[self.name],
            id=f"{PERIODIC_JOB}:{self.name}",
            replace_existing=True,  # a restart keeps the schedule, with this interval
            next_run_time=datetime.now(UTC) + timedelta(minutes=interval_minutes),
        )
        scheduler.start()
        self._scheduler = scheduler
        log.info("consolidation scheduler: every %g min, job store %s", interval_minutes, jobstore_path)

    @property
    def running(self) -> bool:
        """Whether `start` has been called: submitted runs have workers to go to."""
        return self._scheduler is not None

    def next_periodic_run(self) -> datetime | None:
        if self._scheduler is None:
            return None
        job = self._scheduler.get_job(f"{PERIODIC_JOB}:{self.name}")
        return None if job is None else job.next_run_time

    def shutdown(self, wait: bool = True) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=wait)
            self._scheduler = None
        _SERVICES.pop(self.name, None)
