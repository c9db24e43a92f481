"""Settings of the LoRA editor; each default says why."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class LoraConfig:
    # middle MLPs, around the layer where ROME edits best on the default model (DESIGN)
    layers: tuple[int, ...] = (6, 7, 8, 9, 10)
    module_template: str = "model.layers.{}.mlp.down_proj"  # architecture fact as configuration
    rank: int = 4  # one preference needs very few directions; small rank limits interference
    alpha: float = 8.0  # scaling = alpha / rank = 2: faster learning at a small rank
    lr: float = 1e-2  # Adam on freshly initialised factors; with the anchor, 5e-3 left locality at 0.94
    max_steps: int = 80  # hard cap; an anchored fit is slow: at 40 (lr 5e-3) 10 live preferences held 2
    weight_decay: float = 1e-3  # keeps factors small so unrelated inputs barely move
    # weight of the KL anchor at the answer position of everyday chat questions (editors/anchor.py). Off by
    # default because the scope below does its work: the anchor's questions do not open it, so it adds
    # exactly nothing there. Unscoped (`scope=none`), set 8: 10 live preferences kept 0.94-0.96 of the
    # neutral prompts' next tokens at 8 (80 steps, lr 1e-2), 0.02 at 0, at ~5x the time per edit
    # (docs/results.md#loras-locality-anchor)
    kl_factor: float = 0.0
    anchor_tokens: int = 2  # answer positions scored per question: the first token and the one after it
    anchor_per_step: int = 4  # questions per step, in turn: the fit sees all 24 at a quarter of the cost
    # a user's memory is one fit on every live request (latest per subject), re-fitted at each edit, rather
    # than a stack of per-edit fits that overwrite each other (see training.refit_memory)
    refit: bool = True
    # start each re-fit from the adapter in force instead of from zero: ~3x faster edits (the earlier facts
    # are already learned), but off by default because it moves neutral prompts more. 30 UPQA edits: 2.3
    # against 7.6 s/edit, locality 0.06 against 0.30, KL 2.59 against 1.86 (docs/results.md)
    warm_start: bool = False
    cluster_size: int = 1  # 1..9 (prompt, target) pairs per request (cluster representation)
    seed: int = 0  # initialisation of the down factor
    # serve (and train) the adapter only at tokens whose input reads a live subject's key at least `scope`
    # along that subject's opener row (lora/scope.py), so every other token gets the base module's output
    # bit for bit. 0.5, as ROME's: the final memory of the 100-edit bench (10 live preferences) answers all
    # 10 and keeps 50 of 50 neutral prompts' next tokens, KL 0.002, at 16 s per edit against the anchored
    # adapter's 0.94 and 78 s (docs/results.md#scoped-lora-memory). None: at every token, as before. The
    # keys and C are ROME's (same contexts, same statistics cache), so a scope needs `data_dir`
    scope: float | None = 0.5
    data_dir: Path | None = None
    cov_cache_dir: Path = Path("~/.cache/imprint/rome")
    cov_tokens: int = 50_000  # as ROME's, so both editors share one cached C per module

    def __post_init__(self) -> None:
        if self.scope is not None and not 0 < self.scope < 1:
            raise ValueError(f"LoraConfig.scope must be in (0, 1) or None, got {self.scope}")
