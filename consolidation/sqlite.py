"""One way to open the consolidation database (runs, absorbed observations): shared between threads,
autocommit, WAL so a reader never waits for the scheduler's writes, and a lock timeout for other processes."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_db(path: Path, schema: str) -> sqlite3.Connection:
    """A connection to `path` with `schema` applied (idempotent DDL)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(schema)
    return conn
