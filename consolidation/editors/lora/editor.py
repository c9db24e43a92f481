"""LoRA editing: train ΔW = (alpha/r)·B A on chosen MLP projections with the masked target loss.

The adapter is trained through temporary forward hooks (see `training.py`), so the model is untouched, and
returned as low-rank factors: exactly what a peft LoRA adapter stores, and what the weight memory exports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from consolidation.editors.base import EditRequest
from consolidation.editors.lora.config import LoraConfig
from consolidation.editors.registry import register_editor
from consolidation.editors.training import RefittingEditor, fit, training_pairs
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

    def _compute_delta(self, model: nn.Module, tokenizer: Any, requests: list[EditRequest]) -> Delta:
        cfg = self.config
        gen = torch.Generator().manual_seed(cfg.seed)
        factors: dict[str, tuple[nn.Parameter, nn.Parameter]] = {}
        for name in (cfg.module_template.format(i) for i in cfg.layers):
            lin = model.get_submodule(name)
            assert isinstance(lin, nn.Linear), f"{name} is {type(lin).__name__}, LoRA needs nn.Linear"
            a = torch.randn(cfg.rank, lin.in_features, generator=gen) / lin.in_features**0.5  # (r, in)
            b = torch.zeros(lin.out_features, cfg.rank)  # (out, r): zero, so training starts at the model
            factors[name] = (nn.Parameter(a), nn.Parameter(b))
        scale = cfg.alpha / cfg.rank
        params = [p for ab in factors.values() for p in ab]
        steps, loss = fit(
            model,
            tokenizer,
            training_pairs(requests, cfg.cluster_size),
            {n: _lora_term(a, b, scale) for n, (a, b) in factors.items()},
            torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
            cfg.max_steps,
            cfg.kl_factor,
        )
        log.debug("lora: %d steps, loss %.3f", steps, loss)
        return Delta.of(
            LowRankUpdate(module=n, down=a.detach().clone(), up=(b.detach() * scale).clone(), label=self.name)
            for n, (a, b) in factors.items()
        )
