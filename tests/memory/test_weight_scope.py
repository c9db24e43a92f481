"""Scoped updates: rows that apply only where an opener row reads the input at its threshold, merged per
module as served, kept through the delta file, and refused by a plain LoRA export unless asked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from memory.weights.delta import Delta, LowRankUpdate
from memory.weights.files import load_delta, save_delta

E = torch.eye(4)  # inputs and down rows along the axes, so every read is 0 or the coefficient itself


def _opener() -> LowRankUpdate:
    """A fact's row: reads x along axis 0, opens the scope from 0.5 on, writes +1 on output 0."""
    return LowRankUpdate.in_scope("m", E[0:1], torch.tensor([[1.0], [0.0]]), label="fact", opens_at=0.5)


def _held() -> LowRankUpdate:
    """A held row: reads x along axis 1, writes +10 on output 1, only inside the scope."""
    return LowRankUpdate.in_scope("m", E[1:2], torch.tensor([[0.0], [10.0]]), label="fact#held")


def _plain() -> LowRankUpdate:
    """Another editor's row: reads x along axis 2, writes +100 on output 0, everywhere."""
    return LowRankUpdate("m", E[2:3], torch.tensor([[100.0], [0.0]]))


def _served(delta: Delta, x: torch.Tensor) -> torch.Tensor:
    """What the hooks add to a zero output at input x: the module's merged update, as served."""
    (merged,) = delta.merged()
    return merged.apply_to_output(x, torch.zeros((*x.shape[:-1], 2)))


def test_scoped_rows_apply_where_an_opener_reads_its_threshold_and_nowhere_else() -> None:
    delta = Delta.of([_opener(), _held(), _plain()])
    x = torch.tensor(
        [
            [0.6, 1.0, 1.0, 0.0],  # opener reads 0.6 ≥ 0.5: every row applies
            [-0.6, 1.0, 0.0, 0.0],  # |read| counts: a negative read opens it too
            [0.4, 1.0, 1.0, 0.0],  # 0.4 < 0.5: closed, only the unscoped row applies
            [0.0, 1.0, 0.0, 5.0],  # the held row alone never opens it
        ]
    )
    expected = torch.tensor([[100.6, 10.0], [-0.6, 10.0], [100.0, 0.0], [0.0, 0.0]])
    assert torch.equal(_served(delta, x), expected)
    assert delta.is_scoped() and not Delta.of([_plain()]).is_scoped()


def test_the_gate_and_the_part_that_applies_everywhere_read_as_served() -> None:
    """What the drift guard bounds: `opens` is where the served update opens, `every_token` the ΔW an input
    outside the scope still gets (only the unscoped row here)."""
    (merged,) = Delta.of([_opener(), _held(), _plain()]).merged()
    x = torch.tensor(
        [[0.6, 1.0, 1.0, 0.0], [-0.6, 0.0, 0.0, 0.0], [0.4, 1.0, 1.0, 0.0], [0.0, 1.0, 0.0, 5.0]]
    )
    opens = merged.opens(x)
    assert opens is not None and opens.shape == (4, 1)
    assert opens.squeeze(-1).tolist() == [True, True, False, False]
    assert torch.equal(merged.every_token(), _plain().dense())
    (held_only,) = Delta.of([_opener(), _held()]).merged()
    assert not held_only.every_token().any()  # a wholly scoped memory applies nowhere by itself
    assert _plain().opens(x) is None and torch.equal(_plain().every_token(), _plain().dense())


def test_outside_the_scope_the_output_is_the_base_output_bit_for_bit() -> None:
    """A closed token adds exactly zero, so unrelated inputs get the base module's output unchanged."""
    g = torch.Generator().manual_seed(0)
    y = torch.randn(5, 2, generator=g)
    x = torch.randn(5, 4, generator=g) * 0.1  # reads along axis 0 are far below 0.5
    (merged,) = Delta.of([_opener(), _held()]).merged()
    assert torch.equal(merged.apply_to_output(x, y), y)
    unscoped = LowRankUpdate("m", merged.down, merged.up)
    assert not torch.equal(unscoped.apply_to_output(x, y), y)  # the same factors leak without the scope


def test_a_batch_opens_the_scope_per_token() -> None:
    """The gate is decided token by token, across batch and sequence."""
    x = torch.zeros(2, 3, 4)
    x[1, 2, 0] = 1.0
    x[..., 1] = 1.0
    out = _served(Delta.of([_opener(), _held()]), x)
    opened = out[..., 1] != 0
    assert opened.tolist() == [[False, False, False], [False, False, True]]


def test_the_scope_survives_the_delta_file(tmp_path: Path) -> None:
    delta = Delta.of([_opener(), _held(), _plain()])
    save_delta(tmp_path / "v1.safetensors", delta)
    loaded = load_delta(tmp_path / "v1.safetensors")
    for a, b in zip(delta, loaded, strict=True):
        assert torch.equal(a.down, b.down) and torch.equal(a.up, b.up) and a.label == b.label
        assert (a.scoped is None) == (b.scoped is None)
        if a.scoped is not None and a.opens_at is not None:
            assert b.scoped is not None and b.opens_at is not None
            assert torch.equal(a.scoped, b.scoped) and torch.equal(a.opens_at, b.opens_at)
    x = torch.tensor([[0.4, 1.0, 1.0, 0.0], [0.6, 1.0, 0.0, 0.0]])
    assert torch.equal(_served(loaded, x), _served(delta, x))


@pytest.mark.parametrize(
    ("scoped", "opens_at", "message"),
    [
        (torch.tensor([True]), None, "together"),
        (torch.tensor([True, True]), torch.tensor([0.5, 0.5]), "one per row"),
        (torch.tensor([False]), torch.tensor([0.5]), "must be scoped"),
        (torch.tensor([True]), torch.tensor([0.0]), "> 0"),
    ],
)
def test_an_inconsistent_scope_is_refused(
    scoped: torch.Tensor, opens_at: torch.Tensor | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        LowRankUpdate("m", E[0:1], torch.ones(2, 1), scoped=scoped, opens_at=opens_at)
