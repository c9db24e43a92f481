"""The drift guard's checks on the edited matrices themselves: how far each grew, and how often a scoped
update applies.

Why two measures: the growth of ‖W₀+ΔW‖ is the early sign of sequential-edit collapse the literature names,
and for an update that applies at every token it is bounded tightly (`max_norm_growth`). A scoped update
(`memory.weights.delta`) adds exactly nothing at a token where its scope is closed, so the size of its
factors says how much it changes the tokens where it opens, not how many tokens it changes. For such a
module the tight bound holds for its rows that apply everywhere; the whole update gets a loose bound against
collapse (`max_scoped_norm_growth`), and the share of held-out tokens at which it opens is bounded
(`max_scope_open_share`), counted during the perplexity pass the guard runs anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from consolidation.drift.config import DriftConfig
from consolidation.drift.report import Check
from consolidation.hooks import this_thread_only
from memory.weights.delta import Delta, LowRankUpdate


def norm_checks(
    model: nn.Module, candidate: Delta, open_share: dict[str, float], cfg: DriftConfig
) -> list[Check]:
    """One growth check per edited module; for a scoped one also its rows that apply everywhere and, where
    the perplexity pass measured it (`open_share`, from `counting_opens`), its reach on held-out text."""
    out: list[Check] = []
    for update in candidate.merged():
        name, dense = update.module, update.dense()
        weight = model.get_submodule(name).weight.detach().float()  # type: ignore[operator,union-attr]
        relative = {"delta_relative_norm": round(float(dense.norm() / weight.norm()), 5)}
        scoped = update.is_scoped
        bound = cfg.max_scoped_norm_growth if scoped else cfg.max_norm_growth
        rule = "‖W₀+ΔW‖/‖W₀‖ − 1" + (", scoped" if scoped else "")
        out.append(_bounded(f"norm_growth:{name}", _growth(weight, dense), bound, rule, relative))
        if not scoped:
            continue
        everywhere = _growth(weight, update.every_token())
        rule = "‖W₀+ΔW‖/‖W₀‖ − 1 of the rows that apply at every token"
        out.append(_bounded(f"norm_growth_every_token:{name}", everywhere, cfg.max_norm_growth, rule))
        if name in open_share:
            rule = "share of held-out tokens at which the scope opens"
            share = open_share[name]
            out.append(
                _bounded(f"scope_open_share:{name}", share, cfg.max_scope_open_share, rule, verb="opens at")
            )
    return out


def _growth(weight: torch.Tensor, delta: torch.Tensor) -> float:
    return float((weight + delta.to(weight.device, weight.dtype)).norm() / weight.norm()) - 1.0


def _bounded(
    name: str,
    value: float,
    bound: float,
    what: str,
    detail: dict[str, float] | None = None,
    verb: str = "grew",
) -> Check:
    ok = value <= bound
    return Check(
        name=name,
        candidate=value,
        base=None,
        rule=f"{what} ≤ {bound:g}",
        passed=ok,
        reason="" if ok else f"{verb} {value:.2%}, over {bound:.0%}",
        detail=detail or {},
    )


@contextmanager
def counting_opens(model: nn.Module, delta: Delta | None) -> Iterator[dict[str, float]]:
    """While inside, count the tokens at which each scoped module of `delta` opens; on exit the yielded
    dict maps each such module's name to its open share (opened / tokens seen). Empty for no delta, an
    unscoped one, or a module no forward pass reached.

    Reads only the module's input, so it leaves the outputs (and the delta's own hooks) alone. Counts only
    this thread's forward passes: a chat turn served meanwhile runs the same module, and its tokens (its own
    user's memory, or a prompt about the very subject) must not count as this memory's reach."""
    shares: dict[str, float] = {}
    scoped = [u for u in delta.merged() if u.is_scoped] if delta is not None else []
    counts = {u.module: [0, 0] for u in scoped}
    handles = [
        model.get_submodule(u.module).register_forward_hook(
            this_thread_only(_counter(u, counts[u.module])), with_kwargs=True
        )
        for u in scoped
    ]
    try:
        yield shares
    finally:
        for handle in handles:
            handle.remove()
        shares.update({name: opened / seen for name, (opened, seen) in counts.items() if seen})


def _counter(update: LowRankUpdate, count: list[int]) -> Any:
    def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: torch.Tensor) -> None:
        x = args[0] if args else kwargs["input"]  # nn.Linear.forward(input), however it was passed
        with torch.no_grad():
            is_open = update.opens(x.detach())
        if is_open is not None:
            count[0] += int(is_open.sum())
            count[1] += is_open.numel()

    return hook
