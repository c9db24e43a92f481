"""Rates with their uncertainty, and Markdown tables of them.

Why intervals on every rate: the default model's accuracies sit near 0 to 0.5 on a few hundred items, so
two methods 0.04 apart are often the same; a 95% Wilson interval beside each rate says when they are not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Z95 = 1.959964


def wilson(hits: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (good at 0 and 1, where the normal one fails)."""
    if n <= 0:
        return (0.0, 0.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def rate(flags: Sequence[bool]) -> dict[str, Any]:
    """`{"rate", "n", "hits", "ci95"}` for boolean outcomes; rate None when there are none."""
    n, hits = len(flags), sum(bool(f) for f in flags)
    low, high = wilson(hits, n)
    return {
        "rate": round(hits / n, 4) if n else None,
        "n": n,
        "hits": hits,
        "ci95": [round(low, 4), round(high, 4)],
    }


def rate_cell(value: dict[str, Any] | None) -> str:
    """ "0.42 (0.33–0.51)" for a `rate` dict; "–" when nothing was measured."""
    if not value or value.get("rate") is None:
        return "–"
    low, high = value["ci95"]
    return f"{value['rate']:.2f} ({low:.2f}–{high:.2f})"


def cell(value: Any) -> str:
    """A plain table cell: rates as above, floats to three places, None as a dash."""
    if isinstance(value, dict) and "rate" in value:
        return rate_cell(value)
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table with a header row."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
