"""Delta files: a save/load round trip keeps every factor and the stacking order; writes are atomic."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from memory import atomic
from memory.weights.delta import Delta, LowRankUpdate
from memory.weights.files import TEMP_PREFIX, load_delta, save_delta


def _delta(seed: int) -> Delta:
    g = torch.Generator().manual_seed(seed)
    return Delta.of(
        [
            LowRankUpdate("a.proj", torch.randn(1, 6, generator=g), torch.randn(4, 1, generator=g)),
            LowRankUpdate("b.proj", torch.randn(2, 5, generator=g), torch.randn(3, 2, generator=g)),
            LowRankUpdate("a.proj", torch.randn(2, 6, generator=g), torch.randn(4, 2, generator=g)),
        ]
    )


def _assert_same(a: Delta, b: Delta) -> None:
    assert [u.module for u in a] == [u.module for u in b]
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.down, y.down) and torch.equal(x.up, y.up)


def test_round_trip_keeps_factors_and_order(tmp_path: Path) -> None:
    delta = _delta(0)
    save_delta(tmp_path / "v0001.safetensors", delta)
    loaded = load_delta(tmp_path / "v0001.safetensors")
    _assert_same(delta, loaded)
    assert torch.equal(loaded.dense("a.proj"), delta.dense("a.proj"))
    assert [p.name for p in tmp_path.iterdir()] == ["v0001.safetensors"]  # no temp file left


def test_labels_survive_the_file(tmp_path: Path) -> None:
    """ROME finds the update it supersedes by its label, so the label must come back from disk."""
    plain = _delta(1)
    labelled = Delta.of(
        [
            LowRankUpdate(u.module, u.down, u.up, label=f"rome:subject {i}" if i != 1 else "")
            for i, u in enumerate(plain)
        ]
    )
    save_delta(tmp_path / "v0001.safetensors", labelled)
    loaded = load_delta(tmp_path / "v0001.safetensors")
    _assert_same(labelled, loaded)
    assert [u.label for u in loaded] == ["rome:subject 0", "", "rome:subject 2"]
    assert [u.label for u in loaded.labelled("rome:")] == ["rome:subject 0", "rome:subject 2"]


def test_factors_sharing_storage_can_be_saved(tmp_path: Path) -> None:
    buffer = torch.randn(10, 6)
    delta = Delta.of(
        [
            LowRankUpdate("m", buffer[:2], torch.randn(4, 2)),
            LowRankUpdate("m", buffer[2:3], torch.randn(4, 1)),
        ]
    )
    save_delta(tmp_path / "d.safetensors", delta)
    _assert_same(delta, load_delta(tmp_path / "d.safetensors"))


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v0001.safetensors"
    save_delta(path, _delta(0))
    before = path.read_bytes()

    def crash(src: object, dst: object) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(atomic.os, "replace", crash)
    with pytest.raises(OSError, match="disk gone"):
        save_delta(path, _delta(1))
    assert path.read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(TEMP_PREFIX)]
