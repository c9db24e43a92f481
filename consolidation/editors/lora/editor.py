"""LoRA editing: train ΔW = (alpha/r)·B A on chosen MLP projections with the masked target loss.

The adapter is trained through temporary forward hooks (see `training.py`), so the model is untouched, and
returned as low-rank factors: exactly what a peft LoRA adapter stores, and what the weight memory exports.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from consolidation.editors.base import Editor, EditRequest, check_requests
from consolidation.editors.lora.config import LoraConfig
from consolidation.editors.registry import register_editor
from consolidation.editors.training import (
    KLAnchor,
    added_outputs,
    emits_target,
    encode_with_target,
    frozen,
    masked_nll,
)
from consolidation.editors.training import training_pairs as pairs_of
from memory.weights.delta import Delta, LowRankUpdate

log = logging.getLogger(__name__)


def _lora_term(a: torch.Tensor, b: torch.Tensor, scale: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """x ↦ scale · (x Aᵀ) Bᵀ: the adapter's contribution to a module's output, (..., in) → (..., out)."""
    return lambda x: (x @ a.T) @ b.T * scale


@register_editor
class LoraEditor(Editor):
    name: ClassVar[str] = "lora"
    config_cls: ClassVar[type] = LoraConfig

    def __init__(self, config: LoraConfig | None = None) -> None:
        super().__init__(config or LoraConfig())
        self.config: LoraConfig = self.config

    def compute_delta(self, model: nn.Module, tokenizer: Any, requests: Sequence[EditRequest]) -> Delta:
        cfg = self.config
        requests = check_requests(requests)
        if not requests:
            return Delta()
        names = [cfg.module_template.format(i) for i in cfg.layers]
        gen = torch.Generator().manual_seed(cfg.seed)
        factors: dict[str, tuple[nn.Parameter, nn.Parameter]] = {}
        for name in names:
            lin = model.get_submodule(name)
            assert isinstance(lin, nn.Linear), f"{name} is {type(lin).__name__}, LoRA needs nn.Linear"
            a = torch.randn(cfg.rank, lin.in_features, generator=gen) / lin.in_features**0.5  # (r, in)
            b = torch.zeros(
                lin.out_features, cfg.rank
            )  # (out, r): zero, so training starts at the base model
            factors[name] = (nn.Parameter(a), nn.Parameter(b))
        scale = cfg.alpha / cfg.rank
        extra = {n: _lora_term(a, b, scale) for n, (a, b) in factors.items()}
        batch = [encode_with_target(tokenizer, p, t) for p, t in pairs_of(requests, cfg.cluster_size)]
        params = [p for ab in factors.values() for p in ab]
        opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        was_training = model.training
        model.eval()
        anchor = (
            KLAnchor(model, tokenizer) if cfg.kl_factor > 0 else None
        )  # before any hook: current model  # no dropout: the edit must be deterministic
        try:
            with frozen(model), added_outputs(model, extra), torch.enable_grad():
                for step in range(cfg.max_steps):
                    if step and all(emits_target(model, ids, labels) for ids, labels in batch):
                        break
                    opt.zero_grad()
                    loss = torch.stack([masked_nll(model, ids, labels) for ids, labels in batch]).mean()
                    if anchor is not None:
                        loss = loss + cfg.kl_factor * anchor(model)
                    loss.backward()
                    opt.step()
                log.debug("lora: %d steps, loss %.3f", step + 1, float(loss.detach()))
        finally:
            model.train(was_training)
        return Delta.of(
            LowRankUpdate(module=n, down=a.detach().clone(), up=(b.detach() * scale).clone())
            for n, (a, b) in factors.items()
        )
