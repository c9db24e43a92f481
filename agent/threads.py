"""Thread persistence: LangGraph's SQLite checkpointer, keyed by user and thread.

Why the key is "user/thread": two users may both name a thread "t1"; the separator `/` cannot appear in a
validated id, so keys never collide and one user's thread is unreachable with another's id.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver


def open_checkpointer(path: Path) -> SqliteSaver:
    """A checkpointer over the SQLite file at `path` (created on first use; WAL for concurrent readers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    saver = SqliteSaver(conn)
    saver.setup()
    return saver


def thread_key(user_id: str, thread_id: str) -> str:
    return f"{user_id}/{thread_id}"


def delete_user_threads(saver: SqliteSaver, user_id: str) -> int:
    """Remove every checkpoint of `user_id`'s threads; returns how many threads were removed."""
    conn = saver.conn
    rows = conn.execute(
        "SELECT DISTINCT thread_id FROM checkpoints WHERE thread_id LIKE ? ESCAPE '\\'",
        (user_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%",),
    ).fetchall()
    for (tid,) in rows:
        saver.delete_thread(tid)
    return len(rows)
