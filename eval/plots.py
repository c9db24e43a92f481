"""PNG figures for the evaluation harness (matplotlib, Agg backend: no display needed).

Every figure carries a footer naming the model, data, judge and commit that produced it, so a figure copied
out of its results folder still says where it came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window

import matplotlib.pyplot as plt


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


def _finish(fig: Any, path: Path, title: str, footer: str) -> Path:
    fig.suptitle(title)
    fig.text(0.01, 0.005, footer, fontsize=6, color="0.35", ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
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
