"""FT-M: fine-tune one projection's ΔW on the target tokens only, bounded in norm, kept low-rank.

The dense ΔW is trained through a temporary hook (the weight itself is never written), projected back into
the norm ball after every step, and finally truncated by SVD to `keep_rank` factors for the weight memory.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
from torch import nn

from consolidation.editors.base import EditRequest
from consolidation.editors.ftm.config import FtmConfig
from consolidation.editors.registry import register_editor
from consolidation.editors.training import RefittingEditor, fit, training_pairs
from memory.weights.delta import Delta, LowRankUpdate

log = logging.getLogger(__name__)


@register_editor
class FtmEditor(RefittingEditor):
    name: ClassVar[str] = "ftm"
    config_cls: ClassVar[type] = FtmConfig
    config: FtmConfig

    def _compute_delta(self, model: nn.Module, tokenizer: Any, requests: list[EditRequest]) -> Delta:
        cfg = self.config
        name = cfg.module_template.format(cfg.layer)
        lin = model.get_submodule(name)
        assert isinstance(lin, nn.Linear), f"{name} is {type(lin).__name__}, FT-M needs nn.Linear"
        max_norm = cfg.max_norm_ratio * float(lin.weight.detach().norm())
        dw = nn.Parameter(torch.zeros_like(lin.weight))  # (out, in)

        def project() -> None:  # back into the norm ball: the "constrained" in constrained fine-tuning
            norm = float(dw.norm())
            if norm > max_norm:
                dw.mul_(max_norm / norm)

        steps, loss = fit(
            model,
            tokenizer,
            training_pairs(requests, cfg.cluster_size),
            {name: lambda x: x @ dw.T},
            torch.optim.Adam([dw], lr=cfg.lr),
            cfg.max_steps,
            cfg.kl_factor,
            after_step=project,
        )
        log.debug("ftm: %d steps, loss %.3f, |dW| %.4f", steps, loss, float(dw.detach().norm()))
        u, s, vh = torch.linalg.svd(dw.detach(), full_matrices=False)  # (out, k), (k,), (k, in)
        r = min(cfg.keep_rank, int(s.shape[0]))
        up = (u[:, :r] * s[:r]).clone()
        return Delta.of([LowRankUpdate(module=name, down=vh[:r].clone(), up=up, label=self.name)])
