"""Rates carry Wilson intervals; tables render rates, floats and gaps."""

from __future__ import annotations

import pytest

from eval.tables import markdown_table, rate, wilson


def test_wilson_interval_matches_known_values() -> None:
    low, high = wilson(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    assert wilson(0, 0) == (0.0, 0.0)


def test_rate_and_table() -> None:
    r = rate([True, False, True, True])
    assert (r["rate"], r["n"], r["hits"]) == (0.75, 4, 3) and r["ci95"][0] < 0.75 < r["ci95"][1]
    assert rate([])["rate"] is None
    table = markdown_table(["method", "acc", "s"], [["rag", r, 1.23456], ["none", rate([]), None]])
    lines = table.splitlines()
    assert lines[0] == "| method | acc | s |" and lines[2].startswith("| rag | 0.75 (")
    assert lines[2].endswith("| 1.235 |") and lines[3] == "| none | – | – |"
