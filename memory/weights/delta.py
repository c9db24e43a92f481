"""The one delta format every editor returns and the weight memory applies, stacks, saves and exports.

Why low-rank factors for everything: a ROME edit is rank one, a LoRA adapter is rank r, a bounded FT-M
change can be kept low-rank; stacking versions is concatenating factors, applying them at forward time costs
two thin matmuls, and exporting them as a peft LoRA adapter is a rename. ΔW = up @ down, so a module's
output gains (x @ down.T) @ up.T.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class LowRankUpdate:
    """ΔW = up @ down for one linear module, named as in `model.named_modules()`."""

    module: str  # e.g. "model.layers.8.mlp.down_proj"
    down: torch.Tensor  # (r, in_features)
    up: torch.Tensor  # (out_features, r)
    # what the update is about, for editors that later replace it (ROME: "rome:<subject>"); "" = unlabelled.
    # Stored with the factors, so a superseding edit can find and drop exactly its predecessor.
    label: str = ""

    def __post_init__(self) -> None:
        shapes = f"down {tuple(self.down.shape)}, up {tuple(self.up.shape)}"
        if self.down.dim() != 2 or self.up.dim() != 2:
            raise ValueError(f"{self.module}: factors must be matrices, got {shapes}")
        if self.down.shape[0] != self.up.shape[1]:
            raise ValueError(f"{self.module}: rank mismatch, {shapes} (down is (r, in), up is (out, r))")

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    def dense(self) -> torch.Tensor:
        """The full (out, in) change; for inspection and tests, not for serving."""
        return self.up @ self.down

    def apply_to_output(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """y + x ΔWᵀ for inputs x (..., in) and outputs y (..., out)."""
        down = self.down.to(dtype=x.dtype, device=x.device)
        up = self.up.to(dtype=y.dtype, device=y.device)
        return y + (x @ down.T) @ up.T


@dataclass(frozen=True)
class Delta:
    """A set of low-rank updates; several updates may target the same module (stacked edits)."""

    updates: tuple[LowRankUpdate, ...] = field(default_factory=tuple)

    @classmethod
    def of(cls, updates: Iterable[LowRankUpdate]) -> Delta:
        return cls(tuple(updates))

    def __iter__(self) -> Iterator[LowRankUpdate]:
        return iter(self.updates)

    def __len__(self) -> int:
        return len(self.updates)

    def is_empty(self) -> bool:
        return not self.updates

    def modules(self) -> list[str]:
        """Names of the modules this delta changes, in first-seen order."""
        return list(dict.fromkeys(u.module for u in self.updates))

    def stack(self, other: Delta) -> Delta:
        """This delta followed by `other` (both apply; ΔW adds)."""
        return Delta(self.updates + other.updates)

    def merged(self) -> Delta:
        """One update per module, factors concatenated along the rank: same ΔW, fewer hooks."""
        merged: list[LowRankUpdate] = []
        for name in self.modules():
            parts = [u for u in self.updates if u.module == name]
            if len(parts) == 1:
                merged.append(parts[0])
                continue
            merged.append(
                LowRankUpdate(
                    module=name,
                    down=torch.cat([p.down for p in parts], dim=0),
                    up=torch.cat([p.up for p in parts], dim=1),
                )
            )
        return Delta(tuple(merged))

    def dense(self, module: str) -> torch.Tensor:
        """Total ΔW of `module` (sum over its updates)."""
        parts = [u.dense() for u in self.updates if u.module == module]
        if not parts:
            raise KeyError(f"delta has no update for {module!r}; it changes {self.modules()}")
        return torch.stack(parts).sum(0)

    def labelled(self, prefix: str) -> list[LowRankUpdate]:
        """The updates whose label starts with `prefix`, in stacking order."""
        return [u for u in self.updates if u.label.startswith(prefix)]

    def labels(self) -> dict[str, str]:
        """Position → label of the labelled updates, as strings (safetensors metadata holds only strings)."""
        return {str(i): u.label for i, u in enumerate(self.updates) if u.label}

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """Flat name → tensor map for safetensors: `{i}.{module}.down` / `.up`, in stacking order."""
        out: dict[str, torch.Tensor] = {}
        for i, u in enumerate(self.updates):
            out[f"{i}.{u.module}.down"] = u.down.detach().contiguous().cpu()
            out[f"{i}.{u.module}.up"] = u.up.detach().contiguous().cpu()
        return out

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], labels: dict[str, str] | None = None) -> Delta:
        """Inverse of `to_tensors` (and of `labels`)."""
        labels = labels or {}
        order: dict[int, str] = {}
        for key in tensors:
            index, rest = key.split(".", 1)
            order[int(index)] = rest.rsplit(".", 1)[0]
        return cls(
            tuple(
                LowRankUpdate(
                    module=m,
                    down=tensors[f"{i}.{m}.down"],
                    up=tensors[f"{i}.{m}.up"],
                    label=labels.get(str(i), ""),
                )
                for i, m in sorted(order.items())
            )
        )
