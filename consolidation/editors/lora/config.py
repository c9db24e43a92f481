"""Settings of the LoRA editor; each default says why on its line."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LoraConfig:
    layers: tuple[int, ...] = (
        6,
        7,
        8,
        9,
        10,
    )  # middle MLPs: where ROME finds the preference recall; see DESIGN
    module_template: str = "model.layers.{}.mlp.down_proj"  # architecture fact as configuration
    rank: int = 4  # one preference needs very few directions; small rank limits interference between edits
    alpha: float = 8.0  # scaling = alpha / rank = 2: faster learning at a small rank
    lr: float = 5e-3  # Adam on freshly initialised factors; converges in ~10-30 steps on the 135M model
    max_steps: int = 40  # hard cap: a user's edit must finish in seconds on 2 cores
    weight_decay: float = 1e-3  # keeps factors small so unrelated inputs barely move
    kl_factor: float = (
        1.0  # weight of the KL anchor on neutral chat prompts: without it locality fell to ~0.6
    )
    cluster_size: int = 1  # 1..9 (prompt, target) pairs per request (cluster representation)
    seed: int = 0  # initialisation of the down factor
    extra: dict[str, float] = field(
        default_factory=dict
    )  # room for experiment-specific knobs, recorded as-is
