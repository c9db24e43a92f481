"""The paired test behind "no change beyond the probe's noise".

Base and candidate are scored on the same fixed items, so the per-item differences d_i carry the change
and the item-to-item spread is the noise. A seeded bootstrap over items gives the upper (1 − alpha) bound of
the mean difference; the candidate is worse beyond tolerance only when that bound is below −tolerance, i.e.
even the most favourable reading the data allow still shows a drop larger than the tolerance. A paired
bootstrap rather than a t-test because accuracies are 0/1 per item and most differences are exactly zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PairedChange:
    base: float  # mean over items
    candidate: float
    change: float  # candidate − base
    upper: float  # one-sided upper confidence bound of the change
    worse: bool  # upper < −tolerance


def paired_change(
    base: Sequence[float],
    candidate: Sequence[float],
    tolerance: float,
    alpha: float,
    resamples: int,
    seed: int,
) -> PairedChange:
    """Mean change of paired per-item scores (higher is better) and whether it is a drop beyond noise."""
    if len(base) != len(candidate) or not base:
        raise ValueError(f"paired scores need equal, non-zero lengths; got {len(base)} and {len(candidate)}")
    b = torch.tensor(base, dtype=torch.float64)
    c = torch.tensor(candidate, dtype=torch.float64)
    diff = c - b  # (n,)
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(diff), (resamples, len(diff)), generator=generator)  # (R, n)
    means = diff[picks].mean(dim=1)  # (R,)
    upper = float(torch.quantile(means, 1 - alpha))
    change = float(diff.mean())
    return PairedChange(float(b.mean()), float(c.mean()), change, upper, upper < -tolerance)
