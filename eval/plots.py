"""PNG figures for the evaluation harness (matplotlib, Agg backend: no display needed).

Every figure carries a footer naming the model, data, judge and commit that produced it, so a figure copied
out of its results folder still says where it came from.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window

import matplotlib.pyplot as plt

# Characters per inch of figure width that fit on one line: the title at 12 pt and the footer at 6 pt, for
# DejaVu Sans with some slack. Long text is wrapped to that instead of running off the page.
TITLE_PT, TITLE_CHARS_PER_INCH = 12, 10
FOOTER_PT, FOOTER_CHARS_PER_INCH = 6, 21
LINE_HEIGHT = 1.35  # a text line's height, in units of its font size


@dataclass(frozen=True)
class Series:
    """One line or bar series: y values at x positions, with optional (low, high) intervals."""

    label: str
    x: Sequence[float]
    y: Sequence[float | None]
    ci: Sequence[tuple[float, float] | None] | None = None


def footer_text(provenance: Mapping[str, Any]) -> str:
    """ "model … · data … · judge … · commit …" from a provenance block."""
    parts = [f"{k} {provenance[k]}" for k in ("model", "data", "judge", "commit") if provenance.get(k)]
    return " · ".join(parts)


def _wrapped(text: str, width_in: float, chars_per_inch: int) -> list[str]:
    return textwrap.wrap(text, max(20, int(width_in * chars_per_inch))) or [""]


def frame(fig: Any, title: str, footer: str) -> None:
    """Title on top and provenance footer at the bottom, both wrapped to the figure's width, and the figure
    made taller by the room they take, so the panels keep their size: a one-panel figure is narrow, and its
    title and a long judge description used to run off the sides or over the x label."""
    width_in, height_in = fig.get_size_inches()
    title_lines = _wrapped(title, width_in, TITLE_CHARS_PER_INCH)
    footer_lines = _wrapped(footer, width_in, FOOTER_CHARS_PER_INCH)
    fig.suptitle("\n".join(title_lines), fontsize=TITLE_PT)
    fig.text(0.01, 0.005, "\n".join(footer_lines), fontsize=FOOTER_PT, color="0.35", ha="left", va="bottom")
    points_per_inch = 72
    top_in = len(title_lines) * TITLE_PT * LINE_HEIGHT / points_per_inch
    bottom_in = (len(footer_lines) * FOOTER_PT * LINE_HEIGHT + 6) / points_per_inch
    total = height_in + top_in + bottom_in
    fig.set_size_inches(width_in, total)
    fig.tight_layout(rect=(0, bottom_in / total, 1, 1))  # tight_layout keeps the axes clear of the suptitle


def _finish(fig: Any, path: Path, title: str, footer: str) -> Path:
    frame(fig, title, footer)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def grouped_bars(
    path: Path, groups: Sequence[str], series: Sequence[Series], title: str, ylabel: str, footer: str
) -> Path:
    """Bars per group (x = group index in each series), one colour per series, intervals as error bars."""
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(groups) + 2), 4.2))
    width = 0.8 / max(1, len(series))
    for i, s in enumerate(series):
        xs = [x + (i - (len(series) - 1) / 2) * width for x in s.x]
        ys = [y if y is not None else 0.0 for y in s.y]
        err = None
        if s.ci is not None:
            lows = [y - c[0] if c else 0.0 for y, c in zip(ys, s.ci, strict=True)]
            highs = [c[1] - y if c else 0.0 for y, c in zip(ys, s.ci, strict=True)]
            err = [lows, highs]
        ax.bar(xs, ys, width=width, label=s.label, yerr=err, capsize=2)
    ax.set_xticks(range(len(groups)), list(groups))
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, ncol=min(4, len(series)))
    return _finish(fig, path, title, footer)


def line_panels(
    path: Path,
    panels: Mapping[str, Sequence[Series]],
    title: str,
    xlabel: str,
    ylabels: Mapping[str, str],
    footer: str,
    unit_range: bool = False,
) -> Path:
    """One subplot per panel, each with lines (and shaded intervals where given) against a shared x."""
    names = list(panels)
    cols = min(2, len(names)) or 1
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        for s in panels[name]:
            points = [(x, y) for x, y in zip(s.x, s.y, strict=True) if y is not None]
            if not points:
                continue
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=s.label)
            if s.ci is not None:
                band = [(x, c) for x, c in zip(s.x, s.ci, strict=True) if c is not None]
                ax.fill_between(
                    [b[0] for b in band], [b[1][0] for b in band], [b[1][1] for b in band], alpha=0.15
                )
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabels.get(name, ""))
        if unit_range:
            ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    return _finish(fig, path, title, footer)
