"""The one delta format every editor returns and the weight memory applies, stacks, saves and exports.

Why low-rank factors for everything: a ROME edit is rank one, a LoRA adapter is rank r, a bounded FT-M
change can be kept low-rank; stacking versions is concatenating factors, applying them at forward time costs
two thin matmuls, and exporting them as a peft LoRA adapter is a rename. ΔW = up @ down, so a module's
output gains (x @ down.T) @ up.T.

An update may be **scoped**: its rows apply only at the tokens where one of the module's *opener* rows reads
the input at least at that row's threshold (|x · downᵢ| ≥ opens_atᵢ), and nowhere else, so an unrelated
input gets the base module's output bit for bit. Why: a ROME memory is a sum of rank-one maps, and each acts
on every input with a component along its down row; that leak, not the edits themselves, is what changed
unrelated answers (docs/results.md, *Scoped ROME memory*). A plain LoRA adapter cannot express the gate
(`memory.weights.export`).
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
    # scope (module docstring), per row, both None for an update that applies everywhere:
    # `scoped[i]`: row i applies only where the module's scope is open; `opens_at[i]`: the |x · down_i| from
    # which row i opens it (inf: never). Per row rather than per update, so merging is concatenation
    scoped: torch.Tensor | None = None  # (r,) bool
    opens_at: torch.Tensor | None = None  # (r,) float

    def __post_init__(self) -> None:
        shapes = f"down {tuple(self.down.shape)}, up {tuple(self.up.shape)}"
        if self.down.dim() != 2 or self.up.dim() != 2:
            raise ValueError(f"{self.module}: factors must be matrices, got {shapes}")
        if self.down.shape[0] != self.up.shape[1]:
            raise ValueError(f"{self.module}: rank mismatch, {shapes} (down is (r, in), up is (out, r))")
        if (self.scoped is None) != (self.opens_at is None):
            raise ValueError(f"{self.module}: `scoped` and `opens_at` are given together or not at all")
        if self.scoped is not None and self.opens_at is not None:
            if self.scoped.shape != (self.rank,) or self.opens_at.shape != (self.rank,):
                raise ValueError(f"{self.module}: `scoped` and `opens_at` need one per row")
            if bool((self.opens_at.isfinite() & ~self.scoped.bool()).any()):
                raise ValueError(f"{self.module}: a row that opens the scope must be scoped itself")
            if bool((self.opens_at <= 0).any()):
                raise ValueError(f"{self.module}: `opens_at` thresholds must be > 0")

    @classmethod
    def in_scope(
        cls, module: str, down: torch.Tensor, up: torch.Tensor, label: str = "", opens_at: float | None = None
    ) -> LowRankUpdate:
        """A scoped update whose every row opens the scope at `opens_at` (None: opens it nowhere, so it
        applies only where another row of the module has opened it)."""
        rank = int(down.shape[0])
        threshold = float("inf") if opens_at is None else opens_at
        return cls(
            module=module,
            down=down,
            up=up,
            label=label,
            scoped=torch.ones(rank, dtype=torch.bool),
            opens_at=torch.full((rank,), threshold, dtype=torch.float32),
        )

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    @property
    def is_scoped(self) -> bool:
        """Whether some row applies only inside the module's scope."""
        return self.scoped is not None and bool(self.scoped.any())

    def dense(self) -> torch.Tensor:
        """The full (out, in) change; for inspection and tests, not for serving."""
        return self.up @ self.down

    def every_token(self) -> torch.Tensor:
        """The (out, in) part of ΔW that applies at every token: the rows that are not scoped. Why: it is
        all an input outside the scope ever gets, so the drift guard bounds its norm as it bounds an
        unscoped update's (`consolidation.drift.guard`)."""
        if self.scoped is None:
            return self.dense()
        always = ~self.scoped.to(self.down.device).bool()
        return self.up[:, always] @ self.down[always]

    def opens(self, x: torch.Tensor) -> torch.Tensor | None:
        """Where the scope is open for inputs x (..., in): a bool (..., 1), or None when no row is scoped
        (the update then applies everywhere). The drift guard counts these on held-out text."""
        if not self.is_scoped:
            return None
        return self._is_open(x @ self.down.to(dtype=x.dtype, device=x.device).T)

    def _is_open(self, reads: torch.Tensor) -> torch.Tensor:
        assert self.opens_at is not None
        opens_at = self.opens_at.to(dtype=reads.dtype, device=reads.device)
        return (reads.abs() >= opens_at).any(dim=-1, keepdim=True)  # (..., 1)

    def apply_to_output(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """y + x ΔWᵀ for inputs x (..., in) and outputs y (..., out); scoped rows count only at the tokens
        where an opener row reads x at its threshold (this update's own rows: `Delta.merged` gathers a
        module's rows into one update before serving)."""
        down = self.down.to(dtype=x.dtype, device=x.device)
        up = self.up.to(dtype=y.dtype, device=y.device)
        reads = x @ down.T  # (..., r)
        if self.scoped is not None and self.opens_at is not None:
            is_open = self._is_open(reads)
            # where closed, the scoped rows read exactly 0: y + 0 is y, so unrelated tokens stay bit for bit
            reads = torch.where(self.scoped.to(reads.device) & ~is_open, torch.zeros_like(reads), reads)
        return y + reads @ up.T


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
            scoped = any(p.scoped is not None for p in parts)
            merged.append(
                LowRankUpdate(
                    module=name,
                    down=torch.cat([p.down for p in parts], dim=0),
                    up=torch.cat([p.up for p in parts], dim=1),
                    scoped=torch.cat([_scoped_of(p) for p in parts]) if scoped else None,
                    opens_at=torch.cat([_opens_at_of(p) for p in parts]) if scoped else None,
                )
            )
        return Delta(tuple(merged))

    def is_scoped(self) -> bool:
        """Whether any update applies only inside its module's scope (a plain LoRA adapter cannot)."""
        return any(u.is_scoped for u in self.updates)

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
            if u.scoped is not None and u.opens_at is not None:  # files from before scopes have neither
                out[f"{i}.{u.module}.scoped"] = u.scoped.detach().to(torch.uint8).contiguous().cpu()
                out[f"{i}.{u.module}.opens_at"] = u.opens_at.detach().float().contiguous().cpu()
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
                    scoped=_bool_or_none(tensors.get(f"{i}.{m}.scoped")),
                    opens_at=tensors.get(f"{i}.{m}.opens_at"),
                )
                for i, m in sorted(order.items())
            )
        )


def _scoped_of(update: LowRankUpdate) -> torch.Tensor:
    """`update.scoped`, or all False for an update that applies everywhere."""
    if update.scoped is not None:
        return update.scoped.bool()
    return torch.zeros(update.rank, dtype=torch.bool)


def _opens_at_of(update: LowRankUpdate) -> torch.Tensor:
    """`update.opens_at`, or inf (opens nothing) for an update that applies everywhere."""
    if update.opens_at is not None:
        return update.opens_at.float()
    return torch.full((update.rank,), float("inf"))


def _bool_or_none(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """A stored `scoped` mask (safetensors keeps it as uint8) as bool."""
    return None if tensor is None else tensor.bool()
