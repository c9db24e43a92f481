"""Forward-time application on the real model: base untouched, exact equivalence to a dense edit, threads."""

from __future__ import annotations

import contextvars
import copy
import threading
from typing import Any

import pytest
import torch

from memory.errors import InvalidInput
from memory.weights.delta import Delta, LowRankUpdate
from memory.weights.hooks import DeltaApplier

pytestmark = pytest.mark.slow

LAYER8 = "model.layers.8.mlp.down_proj"


def random_delta(seed: int, module: str = LAYER8, rank: int = 2, scale: float = 0.05) -> Delta:
    """A small random low-rank change of a (576, 1536) down_proj."""
    g = torch.Generator().manual_seed(seed)
    down = torch.randn(rank, 1536, generator=g) * scale
    up = torch.randn(576, rank, generator=g) * scale
    return Delta.of([LowRankUpdate(module, down, up)])


@pytest.fixture(scope="module")
def ids(lm: Any) -> torch.Tensor:
    return lm.tokenizer("My favourite cuisine is Thai, and on weekends I", return_tensors="pt")["input_ids"]


@pytest.fixture(scope="module")
def base_logits(lm: Any, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return lm.model(ids).logits


def logits(lm: Any, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return lm.model(ids).logits


def test_no_delta_is_bit_identical_while_another_context_has_one(
    lm: Any, ids: torch.Tensor, base_logits: torch.Tensor
) -> None:
    applier = DeltaApplier(lm.model)
    with applier.activate(random_delta(1)):
        edited = logits(lm, ids)
        plain = contextvars.Context().run(logits, lm, ids)  # a fresh context: nobody's delta
    assert torch.equal(plain, base_logits)
    assert (edited - base_logits).abs().max() > 1e-2
    assert torch.equal(logits(lm, ids), base_logits)


def test_active_delta_equals_a_dense_update_and_base_weights_stay(
    lm: Any, ids: torch.Tensor, base_logits: torch.Tensor
) -> None:
    delta = random_delta(2).stack(random_delta(3, rank=1))  # two stacked edits on one module
    layer = dict(lm.model.named_parameters())
    before = {k: v.detach().clone() for k, v in layer.items() if ".layers.8." in k}
    dense_model = copy.deepcopy(lm.model)  # copied hooks stay inert: they check which module calls them
    with torch.no_grad():
        dense_model.get_submodule(LAYER8).weight += delta.dense(LAYER8)
        dense = dense_model(ids).logits
    del dense_model

    with DeltaApplier(lm.model).activate(delta):
        edited = logits(lm, ids)
    # float32 sums reassociate ((W+ΔW)x vs Wx + (x downᵀ)upᵀ) and 21 layers follow: ~3e-5 apart at most
    torch.testing.assert_close(edited, dense, rtol=1e-5, atol=1e-4)
    assert not torch.allclose(edited, base_logits, atol=1e-2)
    assert torch.equal(logits(lm, ids), base_logits)
    after = dict(lm.model.named_parameters())
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_nesting_restores_and_empty_delta_means_base(
    lm: Any, ids: torch.Tensor, base_logits: torch.Tensor
) -> None:
    applier = DeltaApplier(lm.model)
    a, b = random_delta(4), random_delta(5)
    with applier.activate(a):
        outer = logits(lm, ids)
        with applier.activate(b):
            inner = logits(lm, ids)
        with applier.activate(Delta()):
            assert torch.equal(logits(lm, ids), base_logits)
        assert torch.equal(logits(lm, ids), outer)
    assert not torch.allclose(inner, outer, atol=1e-2)
    assert not applier.active()


def test_hooks_are_installed_once_per_model(lm: Any) -> None:
    delta = random_delta(6)
    for _ in range(3):
        with DeltaApplier(lm.model).activate(delta):
            pass
    assert len(lm.model.get_submodule(LAYER8)._forward_hooks) == 1


def test_a_delta_that_does_not_fit_is_refused(lm: Any) -> None:
    applier = DeltaApplier(lm.model)
    with pytest.raises(InvalidInput, match="does not have"):
        applier.check(random_delta(7, module="model.layers.99.mlp.down_proj"))
    wrong = Delta.of([LowRankUpdate(LAYER8, torch.zeros(1, 576), torch.zeros(1536, 1))])
    with pytest.raises(InvalidInput, match="needs"):
        applier.check(wrong)


def test_threads_get_their_own_delta(lm: Any, ids: torch.Tensor, base_logits: torch.Tensor) -> None:
    applier = DeltaApplier(lm.model)
    deltas = {
        "alice": random_delta(8),
        "bob": Delta(),
        "carol": random_delta(9, module="model.layers.3.mlp.down_proj"),
    }
    expected = {}
    for user, delta in deltas.items():
        with applier.activate(delta):
            expected[user] = logits(lm, ids)
    assert torch.equal(expected["bob"], base_logits)
    order = ["alice", "bob", "carol"]
    errors: list[str] = []
    start = threading.Barrier(2)

    def serve(offset: int) -> None:
        start.wait()
        for i in range(20):
            user = order[(i + offset) % 3]
            with applier.activate(deltas[user]):
                got = logits(lm, ids)
            for other in order:
                close = torch.allclose(got, expected[other], rtol=1e-5, atol=1e-5)
                if close != (other == user):
                    errors.append(
                        f"pass {i}: {user}'s logits {'match' if close else 'differ from'} {other}'s"
                    )

    threads = [threading.Thread(target=serve, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]


def test_worker_threads_inherit_only_through_copy_context(
    lm: Any, ids: torch.Tensor, base_logits: torch.Tensor
) -> None:
    results: dict[str, torch.Tensor] = {}
    delta = random_delta(10)
    with DeltaApplier(lm.model).activate(delta):
        own = logits(lm, ids)
        plain = threading.Thread(target=lambda: results.__setitem__("plain", logits(lm, ids)))
        copied = threading.Thread(
            target=contextvars.copy_context().run,
            args=(lambda: results.__setitem__("copied", logits(lm, ids)),),
        )
        for t in (plain, copied):
            t.start()
            t.join()
    assert torch.equal(results["plain"], base_logits)
    torch.testing.assert_close(results["copied"], own, rtol=1e-5, atol=1e-5)
