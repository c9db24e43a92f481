"""Observations that repeat a preference already in the weights, and the version that carries them.

Why: when a user says again what an edit already holds ("pottery" for the fifth time), editing again would
cost an edit, a drift check and a version for nothing. The observation is absorbed instead: it moves to
`in_weights` and is recorded here against the version whose edit it agrees with, so `Consolidator.reconcile`
treats it like the observations that version's ledger row names: in weights while that version is in force,
back to pending after a rollback. Stored next to the run log, in the consolidation database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from consolidation.sqlite import open_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS absorbed (
    user_id  TEXT NOT NULL,
    obs_id   TEXT NOT NULL,
    version  INTEGER NOT NULL,
    PRIMARY KEY (user_id, obs_id)
);
"""


class AbsorbedLog:
    """obs id → weight-memory version, per user."""

    def __init__(self, path: Path) -> None:
        self._conn = open_db(path, SCHEMA)
        self._lock = threading.Lock()

    def add(self, user_id: str, obs_ids: Iterable[str], version: int) -> None:
        rows = [(user_id, i, version) for i in obs_ids]
        with self._lock:
            self._conn.executemany(
                "INSERT OR REPLACE INTO absorbed (user_id, obs_id, version) VALUES (?, ?, ?)", rows
            )

    def by_version(self, user_id: str) -> dict[int, list[str]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT version, obs_id FROM absorbed WHERE user_id = ? ORDER BY version, obs_id", (user_id,)
            ).fetchall()
        out: dict[int, list[str]] = {}
        for version, obs_id in rows:
            out.setdefault(int(version), []).append(str(obs_id))
        return out

    def delete_user(self, user_id: str) -> int:
        with self._lock:
            return int(self._conn.execute("DELETE FROM absorbed WHERE user_id = ?", (user_id,)).rowcount)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
