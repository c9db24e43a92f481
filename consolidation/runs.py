"""Every consolidation run, recorded in SQLite: who, why, when it started and ended, and what it did.

Why a table of its own: runs are jobs (the API returns a job id, the scheduler queues them) and an audit
trail (which preference was promoted, committed or rejected, and why). A run left `running` by a process
that died is marked `interrupted` when the next process opens the log, so no job stays running forever.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consolidation.sqlite import open_db
from memory.errors import NotFound

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id        TEXT PRIMARY KEY,
    user_id   TEXT NOT NULL,
    trigger   TEXT NOT NULL,
    status    TEXT NOT NULL,
    created   REAL NOT NULL,
    started   REAL,
    finished  REAL,
    result    TEXT,
    error     TEXT,
    pid       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_user ON runs (user_id, created);
"""

QUEUED, RUNNING, DONE, FAILED, INTERRUPTED, SKIPPED = (
    "queued",
    "running",
    "done",
    "failed",
    "interrupted",
    "skipped",
)


@dataclass(frozen=True)
class Run:
    id: str
    user_id: str
    trigger: str  # scheduled | manual | api
    status: str
    created: float
    started: float | None
    finished: float | None
    result: dict[str, Any] | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class RunLog:
    """The `runs` table; safe to share between threads, and between processes (SQLite locking)."""

    def __init__(self, path: Path) -> None:
        self._conn = open_db(path, SCHEMA)
        self._lock = threading.Lock()

    def create(self, user_id: str, trigger: str) -> Run:
        run_id = uuid.uuid4().hex
        with self._lock:
            self._conn.execute(
                "INSERT INTO runs (id, user_id, trigger, status, created, pid) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, user_id, trigger, QUEUED, time.time(), os.getpid()),
            )
        return self.get(run_id)

    def start(self, run_id: str) -> None:
        self._set(run_id, status=RUNNING, started=time.time(), pid=os.getpid())

    def finish(self, run_id: str, result: dict[str, Any]) -> None:
        self._set(run_id, status=DONE, finished=time.time(), result=json.dumps(result))

    def fail(self, run_id: str, error: str, status: str = FAILED) -> None:
        self._set(run_id, status=status, finished=time.time(), error=error)

    def interrupt_stale(self) -> int:
        """Mark runs left queued or running by a process that no longer exists as interrupted."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, pid FROM runs WHERE status IN (?, ?)", (QUEUED, RUNNING)
            ).fetchall()
        dead = [run_id for run_id, pid in rows if not _alive(int(pid))]
        for run_id in dead:
            self.fail(run_id, "the process running it stopped", INTERRUPTED)
        return len(dead)

    def get(self, run_id: str) -> Run:
        with self._lock:
            row = self._conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise NotFound(f"no consolidation run {run_id!r}")
        return _run(row)

    def list(self, user_id: str | None = None, limit: int = 50) -> list[Run]:
        """Newest first."""
        query, args = "SELECT * FROM runs", tuple[str, ...]()
        if user_id is not None:
            query, args = query + " WHERE user_id = ?", (user_id,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY created DESC LIMIT ?", (*args, limit)).fetchall()
        return [_run(r) for r in rows]

    def delete_user(self, user_id: str) -> int:
        with self._lock:
            return int(self._conn.execute("DELETE FROM runs WHERE user_id = ?", (user_id,)).rowcount)

    def totals(self) -> dict[str, dict[str, int]]:
        """Runs per status, and preferences committed and rejected over all finished runs (for metrics)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT status, COUNT(*), SUM(json_extract(result, '$.committed')),"
                " SUM(json_extract(result, '$.rejected')) FROM runs GROUP BY status"
            ).fetchall()
        runs = {str(status): int(n) for status, n, _, _ in rows}
        edits = {
            "committed": sum(int(c or 0) for _, _, c, _ in rows),
            "rejected": sum(int(r or 0) for _, _, _, r in rows),
        }
        return {"runs": runs, "edits": edits}

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _set(self, run_id: str, **fields: Any) -> None:
        columns = ", ".join(f"{k} = ?" for k in fields)
        with self._lock:
            cur = self._conn.execute(f"UPDATE runs SET {columns} WHERE id = ?", (*fields.values(), run_id))
        if cur.rowcount == 0:
            raise NotFound(f"no consolidation run {run_id!r}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _run(row: tuple[Any, ...]) -> Run:
    run_id, user_id, trigger, status, created, started, finished, result, error, _pid = row
    return Run(
        id=run_id,
        user_id=user_id,
        trigger=trigger,
        status=status,
        created=created,
        started=started,
        finished=finished,
        result=None if result is None else json.loads(result),
        error=error,
    )
