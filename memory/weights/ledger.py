"""The ledger of weight-memory versions: which increments exist, where they came from, which one is in force.

Why SQLite in WAL mode with one transaction per change: a commit is a version row plus a head move, and a
crash must leave either both or neither (Invariant 5); WAL lets readers (serving) go on while a
consolidation writes. History is never deleted by a revert: reverting moves `head` only; a version's
status (in force or reverted) is derived on read from the head's parent chain, so any version can be
returned to later (Invariant 3) and a commit writes one row and one head, however many versions exist. Every
row keeps its provenance: editor, settings, the requests with their observation ids, metrics, the drift
report and the time it took (Invariant 4).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memory.errors import NotFound

COMMITTED = "committed"  # on the parent chain of the head: in force
REVERTED = "reverted"  # recorded, not in force

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    user_id    TEXT    NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    parent     INTEGER,
    created_at TEXT    NOT NULL,
    editor     TEXT    NOT NULL,
    settings   TEXT    NOT NULL,
    requests   TEXT    NOT NULL,
    metrics    TEXT    NOT NULL,
    drift      TEXT,
    seconds    REAL    NOT NULL,
    file       TEXT    NOT NULL,
    whole      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, version)
);
CREATE TABLE IF NOT EXISTS heads (
    user_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
"""


class LedgerConflict(RuntimeError):
    """Someone else moved the user's head between reading it and committing; nothing was written."""


@dataclass(frozen=True, kw_only=True)
class NewVersion:
    """What a commit records; the ledger adds user, version number, parent and time."""

    editor: str
    settings: dict[str, Any]
    requests: list[dict[str, Any]]
    metrics: dict[str, Any]
    drift: dict[str, Any] | None
    seconds: float
    file: str  # path of this version's file, relative to the weight memory's root
    # False: the file is an increment on the parent's memory; True: it is the whole memory (a superseding
    # edit replaced earlier updates), so the chain is read from this version on
    whole: bool = False


@dataclass(frozen=True)
class VersionInfo(NewVersion):
    """One recorded increment of a user's weight memory, its provenance, and whether it is in force."""

    user_id: str
    version: int
    parent: int | None  # None for a first version; after a revert, the version it branched from
    created_at: str  # ISO 8601, UTC
    status: str  # COMMITTED (on the head's parent chain: in force) or REVERTED; derived, not stored

    @property
    def in_force(self) -> bool:
        return self.status == COMMITTED


def _row_to_info(row: sqlite3.Row, in_force: set[int]) -> VersionInfo:
    return VersionInfo(
        user_id=row["user_id"],
        version=row["version"],
        parent=row["parent"],
        created_at=row["created_at"],
        editor=row["editor"],
        settings=json.loads(row["settings"]),
        requests=json.loads(row["requests"]),
        metrics=json.loads(row["metrics"]),
        drift=None if row["drift"] is None else json.loads(row["drift"]),
        seconds=row["seconds"],
        file=row["file"],
        whole=bool(row["whole"]),
        status=COMMITTED if row["version"] in in_force else REVERTED,
    )


class Ledger:
    """Versions and heads of every user, in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()  # one connection per thread: sqlite3 objects are not shared safely
        # executescript manages its own transaction; the statements are idempotent (IF NOT EXISTS)
        self._db().executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a ledger written by an older imprint up to this schema (columns only ever get added)."""
        columns = {r["name"] for r in self._db().execute("PRAGMA table_info(versions)")}
        if "whole" not in columns:
            self._db().execute("ALTER TABLE versions ADD COLUMN whole INTEGER NOT NULL DEFAULT 0")

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a commit that returned survives a power cut
            self._local.db = db
        return db

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end and are collected)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    @contextmanager
    def _transaction(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN [IMMEDIATE] … COMMIT, rolled back on any error: all of a change or none of it (writes),
        one snapshot (reads)."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # reading

    def head(self, user_id: str) -> int:
        return self._head_in(self._db(), user_id)

    def _rows(self, user_id: str) -> tuple[dict[int, sqlite3.Row], set[int]]:
        """All of the user's rows by version, and the versions in force; one consistent read."""
        with self._transaction(immediate=False) as db:
            rows = {
                r["version"]: r
                for r in db.execute("SELECT * FROM versions WHERE user_id = ? ORDER BY version", (user_id,))
            }
            head = self._head_in(db, user_id)
        return rows, _parent_chain(head, {v: r["parent"] for v, r in rows.items()})

    def versions(self, user_id: str) -> list[VersionInfo]:
        rows, in_force = self._rows(user_id)
        return [_row_to_info(r, in_force) for r in rows.values()]

    def get(self, user_id: str, version: int) -> VersionInfo:
        rows, in_force = self._rows(user_id)
        if version not in rows:
            raise NotFound(f"user {user_id!r} has no weight-memory version {version}")
        return _row_to_info(rows[version], in_force)

    def chain(self, user_id: str, version: int) -> list[VersionInfo]:
        """The versions whose files make up the memory at `version`, oldest first: its parent chain, from
        the latest whole version on (older files are replaced by it)."""
        rows, in_force = self._rows(user_id)
        if version and version not in rows:
            raise NotFound(f"user {user_id!r} has no weight-memory version {version}")
        chain = sorted(_parent_chain(version, {v: r["parent"] for v, r in rows.items()}))
        wholes = [i for i, v in enumerate(chain) if rows[v]["whole"]]
        start = wholes[-1] if wholes else 0
        return [_row_to_info(rows[v], in_force) for v in chain[start:]]

    def lineage(self, user_id: str, version: int) -> list[VersionInfo]:
        """Every version on `version`'s parent chain, oldest first, whole versions' ancestors included:
        the history of edits that led to that memory (what a gate's retention check re-asks)."""
        rows, in_force = self._rows(user_id)
        if version and version not in rows:
            raise NotFound(f"user {user_id!r} has no weight-memory version {version}")
        chain = sorted(_parent_chain(version, {v: r["parent"] for v, r in rows.items()}))
        return [_row_to_info(rows[v], in_force) for v in chain]

    def next_version(self, user_id: str) -> int:
        row = (
            self._db()
            .execute("SELECT COALESCE(MAX(version), 0) AS v FROM versions WHERE user_id = ?", (user_id,))
            .fetchone()
        )
        return int(row["v"]) + 1

    def users(self) -> list[str]:
        rows = self._db().execute("SELECT DISTINCT user_id FROM versions ORDER BY user_id").fetchall()
        return [r["user_id"] for r in rows]

    def files(self) -> set[str]:
        """Every file a ledger row refers to (relative paths)."""
        return {r["file"] for r in self._db().execute("SELECT file FROM versions").fetchall()}

    # writing: each method is one transaction

    def insert(self, user_id: str, version: int, parent: int, record: NewVersion) -> VersionInfo:
        """Record `version` on top of `parent` (0 = base) and make it the head, in one transaction."""
        with self._transaction() as db:
            if self._head_in(db, user_id) != parent:
                raise LedgerConflict(f"user {user_id!r}: head moved away from {parent} during the commit")
            db.execute(
                "INSERT INTO versions (user_id, version, parent, created_at, editor, settings, requests, "
                "metrics, drift, seconds, file, whole) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    user_id,
                    version,
                    parent or None,
                    datetime.now(UTC).isoformat(timespec="milliseconds"),
                    record.editor,
                    json.dumps(record.settings),
                    json.dumps(record.requests),
                    json.dumps(record.metrics),
                    None if record.drift is None else json.dumps(record.drift),
                    float(record.seconds),
                    record.file,
                    int(record.whole),
                ),
            )
            self._set_head(db, user_id, version)
        return self.get(user_id, version)

    def set_head(self, user_id: str, version: int) -> None:
        """Put `version` (0 = base) in force and mark every version off its parent chain reverted."""
        with self._transaction() as db:
            if version:
                exists = db.execute(
                    "SELECT 1 FROM versions WHERE user_id = ? AND version = ?", (user_id, version)
                ).fetchone()
                if exists is None:
                    raise NotFound(f"user {user_id!r} has no weight-memory version {version}")
            self._set_head(db, user_id, version)

    def delete_user(self, user_id: str) -> int:
        """Remove every row of `user_id`; returns how many versions went."""
        with self._transaction() as db:
            gone = db.execute("DELETE FROM versions WHERE user_id = ?", (user_id,)).rowcount
            db.execute("DELETE FROM heads WHERE user_id = ?", (user_id,))
        return int(gone)

    @staticmethod
    def _head_in(db: sqlite3.Connection, user_id: str) -> int:
        row = db.execute("SELECT version FROM heads WHERE user_id = ?", (user_id,)).fetchone()
        return 0 if row is None else int(row["version"])

    @staticmethod
    def _set_head(db: sqlite3.Connection, user_id: str, version: int) -> None:
        db.execute(
            "INSERT INTO heads (user_id, version) VALUES (?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET version = excluded.version",
            (user_id, version),
        )


def _parent_chain(version: int, parents: dict[int, int | None]) -> set[int]:
    """`version` and its ancestors (empty for 0, the base model)."""
    chain: set[int] = set()
    current: int | None = version
    while current:
        chain.add(current)
        current = parents[current]
    return chain
