"""A user's whole ROME memory on one module, solved for every live key at once.

Why: sequential rank-one edits each map their own key exactly but move every earlier key a little
(k_iᵀC⁻¹k_new ≠ 0); a hundred of them broke the default model (docs/results.md). Solving for all live keys
together, ΔW = R (KᵀC⁻¹K)⁻¹ KᵀC⁻¹ with R = V − W K the residuals, is the smallest change in C's metric that
maps every key k_i to its value v_i exactly (the equality-constrained form of MEMIT's least squares); a
small ridge (`solve_jointly`) relaxes "exactly" where keys are too alike to separate cheaply. A
superseded key is left out of K, so a subject holds one value and the memory's rank is the number of live
keys, not the number of edits ever made.

Keys are not stored separately: each update keeps ROME's down row C⁻¹k/(kᵀC⁻¹k), from which
k = C·down/(downᵀC·down). All arithmetic is float64 on the CPU (n ≤ a few hundred keys; the matrices are
the module's size).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from consolidation.editors.base import subject_key
from memory.weights.delta import LowRankUpdate

log = logging.getLogger(__name__)

LABEL_PREFIX = "rome:"
PAIR_MARK = "→"  # "rome:job→occupation": the update writes job's value under its synonym "occupation"
# "rome:job#held": a token around the subject that the memory holds at what W₀ (+ fixed) gives there,
# rather than at a value of its own; every solve asks for exactly that again (`is_held`)
HOLD_MARK = "#held"
# the tokens before a subject (system prompt, question head) are every fact's context and no fact's value:
# labelled with no subject, no edit supersedes them, so the memory never forgets to hold them in place
SHARED_LABEL = LABEL_PREFIX + HOLD_MARK


def label_for(subject: str, pair_subject: str | None = None) -> str:
    """The label of ROME's updates about `subject`, written at `pair_subject` when that is one of its
    synonyms: a later edit about the same subject replaces them all, and a later fact that claims the
    synonym (`claimed_pairs`) replaces that pair alone."""
    primary = subject_key(subject)
    pair = subject_key(pair_subject) if pair_subject else primary
    return LABEL_PREFIX + primary + ("" if pair == primary else PAIR_MARK + pair)


def held_label(label: str) -> str:
    """The label of the tokens an edit labelled `label` holds in place: superseded with that edit."""
    return label if is_held(label) else label + HOLD_MARK


def is_held(label: str) -> bool:
    """Whether an update holds its key at W₀ (+ fixed) rather than at a value a fit chose."""
    return label.startswith(LABEL_PREFIX) and label.endswith(HOLD_MARK)


def label_subjects(label: str) -> tuple[str, str]:
    """(subject, the subject it is written at) of a `label_for` or `held_label` label; both the same for a
    plain one, and both empty for `SHARED_LABEL`."""
    primary, _, pair = label.removeprefix(LABEL_PREFIX).removesuffix(HOLD_MARK).partition(PAIR_MARK)
    return primary, pair or primary


@dataclass(frozen=True)
class KeyValue:
    """A key the module must map to `value`, and the label of the fact it belongs to."""

    key: torch.Tensor  # (in,)
    value: torch.Tensor  # (out,) the whole module output wanted at `key`, bias included
    label: str
    slack: float | None = None  # this key's own ridge in `solve_jointly`; None: the solve's `ridge`


def down_row(key: torch.Tensor, chol: torch.Tensor) -> torch.Tensor:
    """C⁻¹k/(kᵀC⁻¹k) (float64, (in,)): ROME's down factor, which reads 1 at k."""
    k = key.double().cpu()
    c_inv_k = torch.cholesky_solve(k[:, None], chol)[:, 0]
    return c_inv_k / (c_inv_k @ k)


def key_of(down: torch.Tensor, chol: torch.Tensor) -> torch.Tensor:
    """The key a ROME down row was made from: k = C·down/(downᵀC·down), with C = chol cholᵀ."""
    return keys_of(down.reshape(1, -1), chol)[:, 0]


def keys_of(downs: torch.Tensor, chol: torch.Tensor) -> torch.Tensor:
    """`key_of` for every row of `downs` (n, in) at once: (in, n), one product with C for all of them."""
    d = downs.double().cpu().T  # (in, n)
    c_d = chol @ (chol.T @ d)  # (in, n)
    return c_d / (d * c_d).sum(dim=0, keepdim=True)


def module_output(module: nn.Module, keys: torch.Tensor, updates: Sequence[LowRankUpdate]) -> torch.Tensor:
    """(W₀ + Σ updates) K + b for keys K (in, n), from the base weight itself (float64, (out, n)).

    Read explicitly rather than by calling the module, so the result does not depend on which delta happens
    to be active through hooks.
    """
    weight = module.weight.detach().double().cpu()  # type: ignore[union-attr,operator]
    out = weight @ keys
    bias = getattr(module, "bias", None)
    if isinstance(bias, torch.Tensor):
        out = out + bias.detach().double().cpu()[:, None]
    if updates:  # all updates as one (out, r)·(r, in) product: one matmul pair however many there are
        ups = torch.cat([u.up.double().cpu() for u in updates], dim=1)  # (out, r)
        downs = torch.cat([u.down.double().cpu() for u in updates], dim=0)  # (r, in)
        out = out + ups @ (downs @ keys)
    return out


def split_own(
    updates: Iterable[LowRankUpdate], module_name: str
) -> tuple[list[LowRankUpdate], list[LowRankUpdate]]:
    """(ROME's own rank-one updates on `module_name`, everything else): the first are re-solved as one memory,
    the second held fixed (other editors' updates, other modules)."""
    own: list[LowRankUpdate] = []
    others: list[LowRankUpdate] = []
    for u in updates:
        mine = u.module == module_name and u.label.startswith(LABEL_PREFIX) and u.rank == 1
        (own if mine else others).append(u)
    return own, others


def held_drift(
    module: nn.Module, own: Sequence[LowRankUpdate], fixed: Sequence[LowRankUpdate], chol: torch.Tensor
) -> torch.Tensor:
    """How far the memory `own` has moved the module's output at each key it holds (`is_held` labels):
    ‖(Σ own) k‖ / ‖(W₀ + fixed) k + b‖, float64 (n_held,), in the order of `own`.

    Why: a held key is the context some value was fitted in (the question's end, the system prompt). Each
    solve asks it for what the memory gives there now, so the ridge's small misses there carry over from
    edit to edit; this is the figure that says whether that context has moved (docs/results.md#stability).
    """
    held = [u for u in own if is_held(u.label)]
    if not held:
        return torch.empty(0, dtype=torch.float64)
    keys = keys_of(torch.cat([u.down for u in held], dim=0), chol)  # (in, n_held)
    without = module_output(module, keys, fixed)  # (out, n_held)
    moved = module_output(module, keys, [*fixed, *own]) - without
    return moved.norm(dim=0) / without.norm(dim=0).clamp_min(1e-12)


def scoped(updates: Sequence[LowRankUpdate], opens_at: float | None) -> list[LowRankUpdate]:
    """ROME's updates served inside their subjects' scope (`memory.weights.delta`): a fact's rows open it
    wherever the input reads at least `opens_at` along them, and the held rows (`is_held`) apply only where
    it is open. None leaves them applying everywhere.

    Why the held rows never open it: they are the tokens around every subject (the system prompt, the
    template's tail) and the everyday questions, which every prompt shares; they exist to keep those tokens
    at W₀ + fixed, and outside the scope they are there exactly. Each row reads 1 at its own key, so any
    `opens_at` below 1 lets a fact's own prompt in.
    """
    if opens_at is None:
        return list(updates)
    return [
        LowRankUpdate.in_scope(
            u.module, u.down, u.up, label=u.label, opens_at=None if is_held(u.label) else opens_at
        )
        for u in updates
    ]


def _last_of_repeated(gram: torch.Tensor, cosine: float) -> list[int]:
    """Indices of the keys to keep: only the last of keys that are one direction in C⁻¹'s metric (cosine of
    the Gram matrix KᵀC⁻¹K above `cosine`), because one key cannot map to two values and near-parallel keys
    would make the Gram matrix singular."""
    norms = gram.diagonal().sqrt()
    cos = gram / norms[:, None] / norms[None, :]
    n = len(gram)
    return [i for i in range(n) if not bool((cos[i, i + 1 :] > cosine).any())]


def solve_jointly(
    module_name: str,
    module: nn.Module,
    pairs: list[KeyValue],
    fixed: Sequence[LowRankUpdate],
    chol: torch.Tensor,
    repeat_cosine: float,
    ridge: float = 0.0,
) -> list[LowRankUpdate]:
    """One labelled rank-one update per key, together mapping every key to its value on top of W₀ + fixed.

    `ridge` > 0 trades exactness for size: ΔW = R (KᵀC⁻¹K + ridge·diag(KᵀC⁻¹K))⁻¹ KᵀC⁻¹, so a key
    reaches its value up to a slack that grows with what reaching it costs. Why: a key nearly parallel to
    live ones but wanting another value ("food preference" and "music preference" end on the same token) is
    reached exactly only by a very large ΔW, which then moves every other input. Measured over 120 edits of
    UPQA_800 (docs/results.md#stability), the exact solve doubled the edited matrix's norm and kept 0.75 of
    the live values; a ridge of 1e-3 kept 0.90. The price: a key far from all others keeps 1/(1 + ridge)
    of its change at each solve, and the memory is re-solved at every edit, so a value not refreshed by a
    later edit shrinks by that factor per edit (`RomeEditor._compute_memory` carries the final solve only).
    That shrinking is also what lets conflicting keys settle, and removing it lost more than it saved
    (UPQA_800, docs/results.md#stability): asking each live key for (1 + ridge) times what it has kept
    0.82 of 44 live values after 150 edits against 0.89; asking it for what its fact first asked kept
    0.78 of 40 after 120 against 0.90, with ‖ΔW‖ growing twice as fast.

    A pair's own `slack` replaces `ridge` for its key: a soft constraint, which a large slack all but
    drops (a key alone keeps 1/(1 + slack) of its change). Of repeated keys the last one's slack holds.
    """
    if not pairs:
        return []
    keys = torch.stack([p.key.double().cpu() for p in pairs], dim=1)  # (in, n)
    c_inv_keys = torch.cholesky_solve(keys, chol)  # (in, n)
    gram = keys.T @ c_inv_keys  # (n, n) KᵀC⁻¹K, symmetric positive definite for distinct keys
    kept = _last_of_repeated(gram, repeat_cosine)
    if len(kept) < len(pairs):
        log.info("joint ROME solve: %d repeated keys replaced by later ones", len(pairs) - len(kept))
        pairs = [pairs[i] for i in kept]
        keys, c_inv_keys, gram = keys[:, kept], c_inv_keys[:, kept], gram[kept][:, kept]
    values = torch.stack([p.value.double().cpu() for p in pairs], dim=1)  # (out, n)
    residual = values - module_output(module, keys, fixed)  # (out, n)
    slack = torch.tensor([ridge if p.slack is None else p.slack for p in pairs], dtype=gram.dtype)
    damped = gram + torch.diag(slack * gram.diagonal())
    coef = torch.linalg.solve(damped, residual.T).T  # (out, n) R (KᵀC⁻¹K + slack·diag)⁻¹
    scale = gram.diagonal()  # kᵢᵀC⁻¹kᵢ: moves into `up` so each down row is ROME's normalised one
    downs = (c_inv_keys / scale[None, :]).T  # (n, in)
    ups = coef * scale[None, :]  # (out, n)
    if log.isEnabledFor(logging.DEBUG):  # the condition number costs an SVD: only when asked for
        log.debug("joint ROME solve over %d keys, cond(KᵀC⁻¹K) %.1f", len(pairs), torch.linalg.cond(gram))
    device = pairs[0].key.device
    return [
        LowRankUpdate(
            module=module_name,
            down=downs[i : i + 1].float().to(device),
            up=ups[:, i : i + 1].float().to(device),
            label=p.label,
        )
        for i, p in enumerate(pairs)
    ]


def solve_stacked(
    module_name: str,
    module: nn.Module,
    pairs: list[KeyValue],
    fixed: Sequence[LowRankUpdate],
    chol: torch.Tensor,
) -> list[LowRankUpdate]:
    """Plain sequential ROME: each key mapped to its value on top of all before it (earlier keys drift)."""
    out: list[LowRankUpdate] = []
    for p in pairs:
        key = p.key.double().cpu()
        up = p.value.double().cpu() - module_output(module, key[:, None], [*fixed, *out])[:, 0]
        out.append(
            LowRankUpdate(
                module=module_name,
                down=down_row(key, chol)[None, :].float().to(p.key.device),
                up=up[:, None].float().to(p.key.device),
                label=p.label,
            )
        )
    return out
