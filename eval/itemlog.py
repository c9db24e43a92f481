"""A per-item results log (JSON lines) that lets an interrupted evaluation resume where it stopped.

Why JSON lines and not one report written at the end: an evaluation of a few hundred items on two cores runs
for an hour or more; every finished item is appended and fsynced at once, so a killed run keeps all of them,
and the next run with the same output folder skips every key already there. A line cut short by a crash is
the only damage a kill can do; it is dropped (and the file trimmed to its last whole line) on open.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class ItemLog:
    """Rows keyed by a string `key`; `add` appends durably, `has` says whether a key is already done."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._rows: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        whole = data[: data.rfind(b"\n") + 1]  # a trailing line without its newline was cut by a crash
        if len(whole) < len(data):
            log.warning("%s: dropping a half-written last line (%d bytes)", self.path, len(data) - len(whole))
            with self.path.open("r+b") as fh:
                fh.truncate(len(whole))
        for number, line in enumerate(whole.decode("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{self.path} line {number} is not JSON ({exc}); move it away") from exc
            self._rows[str(row["key"])] = row

    def has(self, key: str) -> bool:
        return key in self._rows

    def get(self, key: str) -> dict[str, Any] | None:
        return self._rows.get(key)

    def add(self, row: dict[str, Any]) -> None:
        """Append one finished item (it must carry a `key`) and make it durable before returning."""
        if "key" not in row:
            raise ValueError(f"an item row needs a 'key': {sorted(row)}")
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self._rows[str(row["key"])] = row

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row, in the order first written."""
        return iter(self._rows.values())

    def __len__(self) -> int:
        return len(self._rows)
