"""LoRA editing: train ΔW = (alpha/r)·B A on chosen MLP projections with the masked target loss.

The adapter is trained through temporary forward hooks (see `training.py`), so the model is untouched, and
returned as low-rank factors: exactly what a peft LoRA adapter stores, and what the weight memory exports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import torch
from torch import nn

from consolidation.editors.base import EditRequest
from consolidation.editors.lora.config import LoraConfig
from consolidation.editors.lora.scope import SubjectScope, gated, opener_update
from consolidation.editors.registry import register_editor
from consolidation.editors.rome.config import RomeConfig
from consolidation.editors.training import RefittingEditor, fit, trained_requests, training_pairs
from memory.errors import InvalidInput
from memory.weights.delta import Delta, LowRankUpdate

log = logging.getLogger(__name__)


def _lora_term(a: torch.Tensor, b: torch.Tensor, scale: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """x ↦ scale · (x Aᵀ) Bᵀ: the adapter's contribution to a module's output, (..., in) → (..., out)."""
    return lambda x: (x @ a.T) @ b.T * scale


@register_editor
class LoraEditor(RefittingEditor):
    name: ClassVar[str] = "lora"
    config_cls: ClassVar[type] = LoraConfig
    config: LoraConfig
    added_settings: ClassVar[Mapping[str, tuple[Any, frozenset[str]]]] = MappingProxyType(
        {"scope": (None, frozenset())}  # None: applied at every token, as before
    )

    def __init__(self, config: LoraConfig | None = None) -> None:
        super().__init__(config)
        self._scope: SubjectScope | None = None

    def _subject_scope(self) -> SubjectScope:
        cfg = self.config
        if cfg.data_dir is None:
            raise InvalidInput(
                "LoRA's scope needs LoraConfig.data_dir (the plain text of ROME's statistics), or scope=none"
            )
        if self._scope is None:
            self._scope = SubjectScope(
                RomeConfig(data_dir=cfg.data_dir, cov_cache_dir=cfg.cov_cache_dir, cov_tokens=cfg.cov_tokens)
            )
        return self._scope

    def _refit(self, model: nn.Module, tokenizer: Any, live: list[EditRequest], own: Delta) -> Delta:
        return self._compute_delta(model, tokenizer, live, own if self.config.warm_start else None)

    def _compute_delta(
        self, model: nn.Module, tokenizer: Any, requests: list[EditRequest], start: Delta | None = None
    ) -> Delta:
        """Train fresh factors, or continue from `start`'s (one update of this rank per module, as this
        editor makes them; anything else is ignored and the fit starts from zero)."""
        cfg = self.config
        scale = cfg.alpha / cfg.rank
        seeds = _seeds(start, cfg.rank)
        gen = torch.Generator().manual_seed(cfg.seed)
        factors: dict[str, tuple[nn.Parameter, nn.Parameter]] = {}
        for name in (cfg.module_template.format(i) for i in cfg.layers):
            lin = model.get_submodule(name)
            assert isinstance(lin, nn.Linear), f"{name} is {type(lin).__name__}, LoRA needs nn.Linear"
            a = torch.randn(cfg.rank, lin.in_features, generator=gen) / lin.in_features**0.5  # (r, in)
            b = torch.zeros(lin.out_features, cfg.rank)  # (out, r): zero, so training starts at the model
            seed = seeds.get(name)
            if seed is not None and seed.down.shape == a.shape and seed.up.shape == b.shape:
                a, b = seed.down.detach().clone().float(), (seed.up.detach() / scale).clone().float()
            factors[name] = (nn.Parameter(a), nn.Parameter(b))
        params = [p for ab in factors.values() for p in ab]
        terms = {n: _lora_term(a, b, scale) for n, (a, b) in factors.items()}
        openers: dict[str, LowRankUpdate] = {}
        if cfg.scope is not None:
            pairs = trained_requests(requests, cfg.cluster_size)
            for n, (_, b) in factors.items():
                rows = self._subject_scope().openers(model, tokenizer, n, pairs)
                openers[n] = opener_update(n, rows, cfg.scope, int(b.shape[0]), self.name)
            terms = {n: gated(t, openers[n]) for n, t in terms.items()}
        steps, loss = fit(
            model,
            tokenizer,
            training_pairs(requests, cfg.cluster_size),
            terms,
            torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
            cfg.max_steps,
            cfg.kl_factor,
            cfg.anchor_tokens,
            cfg.anchor_per_step,
        )
        log.debug("lora: %d steps, loss %.3f", steps, loss)
        out: list[LowRankUpdate] = []
        for n, (a, b) in factors.items():
            down, up = a.detach().clone(), (b.detach() * scale).clone()
            if n in openers:  # the adapter applies only where its opener rows open the scope
                out += [LowRankUpdate.in_scope(n, down, up, label=self.name), openers[n]]
            else:
                out.append(LowRankUpdate(module=n, down=down, up=up, label=self.name))
        return Delta.of(out)


def _seeds(start: Delta | None, rank: int) -> dict[str, LowRankUpdate]:
    """The adapter rows per module to continue from: where `start` holds exactly one update of `rank`
    there, or (scoped) one such and the opener rows after it, which are made again from the live subjects."""
    if start is None:
        return {}
    updates: dict[str, list[LowRankUpdate]] = {}
    for u in start:
        updates.setdefault(u.module, []).append(u)
    return {
        m: us[0]
        for m, us in updates.items()
        if us[0].rank == rank and (len(us) == 1 or (len(us) == 2 and us[0].is_scoped and us[1].is_scoped))
    }
