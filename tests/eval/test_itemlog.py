"""The per-item log resumes runs: rows survive reopening, a crash-cut line is dropped, junk is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.itemlog import ItemLog


def test_rows_survive_reopening(tmp_path: Path) -> None:
    log = ItemLog(tmp_path / "items.jsonl")
    log.add({"key": "a|1", "hit": True})
    log.add({"key": "a|2", "hit": False})
    again = ItemLog(tmp_path / "items.jsonl")
    assert again.has("a|1") and again.has("a|2") and not again.has("a|3")
    assert [r["key"] for r in again.rows()] == ["a|1", "a|2"] and len(again) == 2
    assert again.get("a|2") == {"key": "a|2", "hit": False}


def test_a_half_written_last_line_is_dropped_and_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "items.jsonl"
    ItemLog(path).add({"key": "done"})
    with path.open("a") as fh:
        fh.write('{"key": "cut mid-wri')  # what a kill during `add` leaves
    log = ItemLog(path)
    assert [r["key"] for r in log.rows()] == ["done"]
    log.add({"key": "next"})  # appends after the trimmed file, not onto the broken line
    assert [r["key"] for r in ItemLog(path).rows()] == ["done", "next"]


def test_a_row_without_key_or_a_corrupt_line_is_refused(tmp_path: Path) -> None:
    log = ItemLog(tmp_path / "items.jsonl")
    with pytest.raises(ValueError, match="key"):
        log.add({"hit": True})
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "a"}\nnot json\n{"key": "b"}\n')
    with pytest.raises(ValueError, match="line 2"):
        ItemLog(bad)
