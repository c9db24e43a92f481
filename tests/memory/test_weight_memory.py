"""Weight memory: versions, revert and branching, persistence, crash safety, deletion, bad ids."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from memory.errors import InvalidInput, NotFound
from memory.weights.delta import Delta, LowRankUpdate
from memory.weights.files import TEMP_PREFIX
from memory.weights.ledger import COMMITTED, REVERTED, Ledger
from memory.weights.weight_memory import WeightMemory

LAYER8 = "model.layers.8.mlp.down_proj"
PROVENANCE: dict[str, Any] = {
    "editor": "rome",
    "settings": {"layer": 8},
    "requests": [{"prompt": "favourite cuisine", "target": " Thai", "observation_ids": ["o1"]}],
    "metrics": {"efficacy": 1.0},
    "seconds": 9.2,
}


def random_delta(
    seed: int, module: str = LAYER8, shape: tuple[int, int] = (576, 1536), rank: int = 2
) -> Delta:
    g = torch.Generator().manual_seed(seed)
    out_features, in_features = shape
    down = torch.randn(rank, in_features, generator=g) * 0.05
    up = torch.randn(out_features, rank, generator=g) * 0.05
    return Delta.of([LowRankUpdate(module, down, up)])


class _Tiny(nn.Module):
    """Named like a Llama (`model.layers.8.mlp.down_proj`) but (4, 6): bookkeeping needs no real model."""

    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Module()
        self.model.layers = nn.ModuleList(nn.Module() for _ in range(9))
        for layer in self.model.layers:
            layer.mlp = nn.Module()
            layer.mlp.down_proj = nn.Linear(6, 4, bias=False)


def tiny_delta(seed: int) -> Delta:
    return random_delta(seed, shape=(4, 6), rank=1)


def _same(a: Delta, b: Delta) -> bool:
    return len(a) == len(b) and all(
        x.module == y.module and torch.equal(x.down, y.down) and torch.equal(x.up, y.up)
        for x, y in zip(a, b, strict=True)
    )


@pytest.fixture
def wm(tmp_path: Path) -> WeightMemory:
    return WeightMemory(tmp_path / "wm", _Tiny())


def test_versions_revert_and_branching(wm: WeightMemory) -> None:
    d1, d2, d3 = tiny_delta(1), tiny_delta(2), tiny_delta(3)
    v1 = wm.commit("u1", d1, **PROVENANCE)
    v2 = wm.commit("u1", d2, **PROVENANCE, drift={"boolq": 0.61})
    assert (v1.version, v1.parent, v2.version, v2.parent) == (1, None, 2, 1)
    assert v2.drift == {"boolq": 0.61} and v2.requests == PROVENANCE["requests"] and v1.drift is None
    assert v2.file == "users/u1/v0002.safetensors"
    assert wm.head("u1") == 2 and _same(wm.delta("u1"), d1.stack(d2))

    reverted_to = wm.revert("u1", 1)
    assert reverted_to is not None and reverted_to.version == 1
    assert wm.head("u1") == 1 and _same(wm.delta("u1"), d1)
    assert [v.status for v in wm.versions("u1")] == [COMMITTED, REVERTED]

    v3 = wm.commit("u1", d3, **PROVENANCE)
    assert (v3.version, v3.parent) == (3, 1)  # a branch from the reverted-to version; v2 stays recorded
    assert _same(wm.delta("u1"), d1.stack(d3))
    assert _same(wm.delta("u1", 2), d1.stack(d2))  # any recorded version can be looked at
    assert [v.status for v in wm.versions("u1")] == [COMMITTED, REVERTED, COMMITTED]

    assert wm.revert("u1", 0) is None
    assert wm.head("u1") == 0 and wm.delta("u1").is_empty()
    assert all(v.status == REVERTED for v in wm.versions("u1"))
    wm.revert("u1", 2)  # returning to a reverted branch
    assert _same(wm.delta("u1"), d1.stack(d2))


def _labelled(seed: int, label: str) -> LowRankUpdate:
    update = tiny_delta(seed).updates[0]
    return LowRankUpdate(update.module, update.down, update.up, label=label)


def test_a_whole_memory_replaces_the_chain_and_revert_restores_it(tmp_path: Path) -> None:
    wm = WeightMemory(tmp_path / "wm", _Tiny())
    hobby, pet = _labelled(1, "rome:hobby"), _labelled(2, "rome:pet")
    wm.commit("u1", Delta.of([hobby]), **PROVENANCE)
    # the editor's whole new memory that merely extends the head: stored as the increment
    extended = wm.commit("u1", wm.delta("u1").stack(Delta.of([pet])), whole=True, **PROVENANCE)
    assert extended.whole is False
    assert [u.label for u in wm.delta("u1")] == ["rome:hobby", "rome:pet"]
    # a superseding edit: the old hobby update is gone from the new memory
    new_hobby = _labelled(3, "rome:hobby")
    replaced = wm.commit("u1", Delta.of([pet, new_hobby]), whole=True, **PROVENANCE)
    assert replaced.whole is True and replaced.parent == 2
    assert _same(wm.delta("u1"), Delta.of([pet, new_hobby]))
    # the same holds for a fresh instance reading the files, and older versions are intact
    fresh = WeightMemory(tmp_path / "wm", _Tiny())
    assert [u.label for u in fresh.delta("u1")] == ["rome:pet", "rome:hobby"]
    assert _same(fresh.delta("u1"), Delta.of([pet, new_hobby]))
    fresh.revert("u1", 2)
    assert _same(fresh.delta("u1"), Delta.of([hobby, pet]))
    # on top of a whole version, increments stack as usual
    fresh.revert("u1", 3)
    fresh.commit("u1", tiny_delta(4), **PROVENANCE)
    assert _same(fresh.delta("u1"), Delta.of([pet, new_hobby]).stack(tiny_delta(4)))
    with pytest.raises(InvalidInput):  # a "new" memory identical to the head records nothing
        fresh.commit("u1", fresh.delta("u1"), whole=True, **PROVENANCE)
    assert fresh.head("u1") == 4


def test_a_ledger_from_before_whole_versions_still_opens(tmp_path: Path) -> None:
    """Older ledgers lack the `whole` column; opening one adds it and reads old rows as increments."""
    root = tmp_path / "wm"
    wm = WeightMemory(root, _Tiny())
    wm.commit("u1", tiny_delta(1), **PROVENANCE)
    wm.close()
    db = sqlite3.connect(root / "ledger.sqlite3")
    db.execute("ALTER TABLE versions DROP COLUMN whole")
    db.commit()
    db.close()
    reopened = WeightMemory(root, _Tiny())
    assert [v.whole for v in reopened.versions("u1")] == [False]
    assert _same(reopened.delta("u1"), tiny_delta(1))
    reopened.commit("u1", tiny_delta(2), **PROVENANCE)
    assert _same(reopened.delta("u1"), tiny_delta(1).stack(tiny_delta(2)))


def test_unknown_versions_and_users(wm: WeightMemory) -> None:
    assert wm.head("nobody") == 0 and wm.versions("nobody") == [] and wm.delta("nobody").is_empty()
    wm.commit("u1", tiny_delta(1), **PROVENANCE)
    with pytest.raises(NotFound):
        wm.revert("u1", 5)
    with pytest.raises(NotFound):
        wm.delta("u1", 7)
    with pytest.raises(InvalidInput):
        wm.revert("u1", -1)
    with pytest.raises(InvalidInput, match="empty"):
        wm.commit("u1", Delta(), **PROVENANCE)
    with pytest.raises(InvalidInput, match="does not have"):
        wm.commit("u1", random_delta(1, module="model.layers.99.mlp.down_proj", shape=(4, 6)), **PROVENANCE)
    assert wm.head("u1") == 1 and len(wm.versions("u1")) == 1


def test_persistence_across_instances(tmp_path: Path) -> None:
    model = _Tiny()
    first = WeightMemory(tmp_path, model)
    first.commit("u1", tiny_delta(1), **PROVENANCE)
    first.commit("u1", tiny_delta(2), **PROVENANCE)
    first.revert("u1", 1)
    second = WeightMemory(tmp_path, model)
    assert second.versions("u1") == first.versions("u1")
    assert second.head("u1") == 1 and _same(second.delta("u1"), tiny_delta(1))
    assert second.users() == ["u1"]


def test_crash_between_file_and_ledger(wm: WeightMemory, monkeypatch: pytest.MonkeyPatch) -> None:
    wm.commit("u1", tiny_delta(1), **PROVENANCE)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("killed before the ledger transaction")

    monkeypatch.setattr(Ledger, "insert", crash)
    with pytest.raises(RuntimeError, match="killed"):
        wm.commit("u1", tiny_delta(2), **PROVENANCE)
    monkeypatch.undo()
    orphan = wm.root / "users" / "u1" / "v0002.safetensors"
    (wm.root / "users" / "u1" / f"{TEMP_PREFIX}half.part").write_bytes(b"half a file")
    assert orphan.exists()

    fresh = WeightMemory(wm.root, wm.applier.model)  # as after a restart
    assert fresh.head("u1") == 1 and [v.version for v in fresh.versions("u1")] == [1]
    assert _same(fresh.delta("u1"), tiny_delta(1))
    removed = fresh.recover()
    assert sorted(p.name for p in removed) == sorted([orphan.name, f"{TEMP_PREFIX}half.part"])
    assert sorted(p.name for p in (wm.root / "users" / "u1").iterdir()) == ["v0001.safetensors"]
    assert fresh.commit("u1", tiny_delta(3), **PROVENANCE).version == 2  # runs again cleanly


def test_delete_user(wm: WeightMemory) -> None:
    wm.commit("u1", tiny_delta(1), **PROVENANCE)
    wm.commit("u1", tiny_delta(2), **PROVENANCE)
    wm.commit("u2", tiny_delta(3), **PROVENANCE)
    assert wm.delete_user("u1") == 2
    assert wm.users() == ["u2"] and wm.head("u1") == 0 and wm.delta("u1").is_empty()
    assert not (wm.root / "users" / "u1").exists()
    assert wm.head("u2") == 1
    assert wm.delete_user("u1") == 0
    assert wm.commit("u1", tiny_delta(4), **PROVENANCE).version == 1  # a new start, no old history


@pytest.mark.parametrize("bad", ["../x", "", "a\x00b", "a/b", "..", 7])
def test_bad_user_ids_change_nothing(wm: WeightMemory, bad: Any) -> None:
    before = sorted(p.relative_to(wm.root) for p in wm.root.rglob("*"))
    for call in (
        lambda: wm.commit(bad, tiny_delta(1), **PROVENANCE),
        lambda: wm.delta(bad),
        lambda: wm.head(bad),
        lambda: wm.versions(bad),
        lambda: wm.revert(bad, 0),
        lambda: wm.delete_user(bad),
        lambda: wm.applied(bad).__enter__(),
    ):
        with pytest.raises(InvalidInput):
            call()
    assert sorted(p.relative_to(wm.root) for p in wm.root.rglob("*")) == before
    assert not (wm.root.parent / "x").exists()


# the real model


@pytest.fixture(scope="module")
def ids(lm: Any) -> torch.Tensor:
    return lm.tokenizer("For dinner tonight I would like", return_tensors="pt")["input_ids"]


def logits(lm: Any, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return lm.model(ids).logits


@pytest.mark.slow
def test_users_get_their_own_memory_on_the_real_model(tmp_path: Path, lm: Any, ids: torch.Tensor) -> None:
    base = logits(lm, ids)
    wm = WeightMemory(tmp_path, lm.model)
    wm.commit("alice", random_delta(11), **PROVENANCE)
    with wm.applied("alice"):
        alice = logits(lm, ids)
        with wm.applied("bob"):  # a user without edits, even inside another user's scope
            assert torch.equal(logits(lm, ids), base)
    assert (alice - base).abs().max() > 1e-2
    assert torch.equal(logits(lm, ids), base)

    wm.commit("alice", random_delta(12), **PROVENANCE)
    with wm.applied("alice"):
        alice2 = logits(lm, ids)
    wm.revert("alice", 1)
    with wm.applied("alice"):
        torch.testing.assert_close(logits(lm, ids), alice, rtol=0, atol=0)

    again = WeightMemory(tmp_path, lm.model)  # persistence: same versions, same logits
    assert again.head("alice") == 1 and len(again.versions("alice")) == 2
    with again.applied("alice"):
        assert torch.equal(logits(lm, ids), alice)
    again.revert("alice", 2)
    with again.applied("alice"):
        assert torch.equal(logits(lm, ids), alice2)

    again.delete_user("alice")
    with again.applied("alice"):
        assert torch.equal(logits(lm, ids), base)
