"""Settings of the LoRA editor; each default says why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LoraConfig:
    # middle MLPs, around the layer where ROME edits best on the default model (DESIGN)
    layers: tuple[int, ...] = (6, 7, 8, 9, 10)
    module_template: str = "model.layers.{}.mlp.down_proj"  # architecture fact as configuration
    rank: int = 4  # one preference needs very few directions; small rank limits interference
    alpha: float = 8.0  # scaling = alpha / rank = 2: faster learning at a small rank
    lr: float = 5e-3  # Adam on freshly initialised factors; converges in ~10-30 steps on the 135M model
    max_steps: int = 40  # hard cap: a user's edit must finish in seconds on 2 cores
    weight_decay: float = 1e-3  # keeps factors small so unrelated inputs barely move
    # KL anchor on neutral chat prompts; off: in a 3-edit try it left locality at 0.5-0.8 (0.43-0.73
    # without) and made each edit ~6x slower; the answer position shares the chat template's tokens
    kl_factor: float = 0.0
    # a user's memory is one fit on every live request (latest per subject), re-fitted at each edit, rather
    # than a stack of per-edit fits that overwrite each other (see training.refit_memory)
    refit: bool = True
    # start each re-fit from the adapter in force instead of from zero: ~3x faster edits (the earlier facts
    # are already learned), but off by default because it moves neutral prompts more. 30 UPQA edits: 2.3
    # against 7.6 s/edit, locality 0.06 against 0.30, KL 2.59 against 1.86 (docs/results.md)
    warm_start: bool = False
    cluster_size: int = 1  # 1..9 (prompt, target) pairs per request (cluster representation)
    seed: int = 0  # initialisation of the down factor
