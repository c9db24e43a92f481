"""The joint ROME solve on a small linear layer: every live key maps to its value exactly, keys come back
from the stored down rows, and a repeated key keeps only its latest value."""

from __future__ import annotations

import torch
from torch import nn

from consolidation.editors.rome.joint import (
    SHARED_LABEL,
    KeyValue,
    down_row,
    held_drift,
    held_label,
    is_held,
    key_of,
    label_for,
    label_subjects,
    module_output,
    solve_jointly,
    solve_stacked,
    split_own,
)
from memory.weights.delta import Delta, LowRankUpdate

IN, OUT = 24, 10


def _setup(seed: int = 0) -> tuple[nn.Linear, torch.Tensor]:
    """A biased linear layer and the Cholesky factor of a non-trivial second-moment matrix."""
    gen = torch.Generator().manual_seed(seed)
    layer = nn.Linear(IN, OUT, bias=True)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(OUT, IN, generator=gen))
        layer.bias.copy_(torch.randn(OUT, generator=gen))
    samples = torch.randn(500, IN, generator=gen, dtype=torch.float64) * torch.linspace(0.2, 3.0, IN)
    c = samples.T @ samples / len(samples)
    return layer, torch.linalg.cholesky(c)


def _pairs(n: int, seed: int = 1) -> list[KeyValue]:
    gen = torch.Generator().manual_seed(seed)
    return [
        KeyValue(torch.randn(IN, generator=gen), torch.randn(OUT, generator=gen), label_for(f"s{i}"))
        for i in range(n)
    ]


def _maps(layer: nn.Linear, updates: list[LowRankUpdate], pair: KeyValue) -> torch.Tensor:
    return module_output(layer, pair.key.double()[:, None], updates)[:, 0]


def test_label_ignores_case_and_spacing() -> None:
    assert label_for("Food  Preference") == label_for("food preference") == "rome:food preference"
    assert label_for("food") != label_for("food preference")


def test_a_synonym_pair_label_names_its_fact_and_where_it_is_written() -> None:
    pair = label_for("Job", "Occupation")
    assert pair == "rome:job→occupation"
    assert label_subjects(pair) == ("job", "occupation")
    assert label_subjects(label_for("job")) == ("job", "job")
    assert label_for("job", " JOB ") == label_for("job")  # the subject itself is no pair


def test_held_labels_belong_to_their_fact_and_the_shared_one_to_none() -> None:
    pair = label_for("job", "occupation")
    assert held_label(pair) == "rome:job→occupation#held" == held_label(held_label(pair))
    assert is_held(held_label(pair)) and is_held(SHARED_LABEL)
    assert not is_held(pair) and not is_held("lora:job#held")
    assert label_subjects(held_label(pair)) == label_subjects(pair) == ("job", "occupation")
    assert label_subjects(SHARED_LABEL) == ("", "")


def test_key_round_trips_through_the_down_row() -> None:
    _, chol = _setup()
    key = torch.randn(IN, dtype=torch.float64)
    down = down_row(key, chol)
    assert torch.allclose(down @ key, torch.tensor(1.0, dtype=torch.float64))
    assert torch.allclose(key_of(down.float(), chol), key, rtol=1e-4, atol=1e-5)  # stored as float32


def test_joint_solve_maps_every_key_to_its_value() -> None:
    layer, chol = _setup()
    pairs = _pairs(5)
    updates = solve_jointly("layer", layer, pairs, [], chol, repeat_cosine=0.999)
    assert [u.label for u in updates] == [p.label for p in pairs]
    assert all(u.rank == 1 for u in updates)
    for p in pairs:
        assert torch.allclose(_maps(layer, updates, p), p.value.double(), atol=1e-4)


def test_stacked_solve_moves_earlier_keys_and_joint_does_not() -> None:
    """The reason for the joint solve: stacked rank-one edits disturb every earlier key."""
    layer, chol = _setup()
    pairs = _pairs(4)
    stacked = solve_stacked("layer", layer, pairs, [], chol)
    assert torch.allclose(_maps(layer, stacked, pairs[-1]), pairs[-1].value.double(), atol=1e-4)
    drift = max(float((_maps(layer, stacked, p) - p.value).norm()) for p in pairs[:-1])
    assert drift > 1e-2


def test_joint_solve_holds_fixed_updates_in_place() -> None:
    """Updates not ROME's own (a LoRA on the same module) stay; the solve works on top of them."""
    layer, chol = _setup()
    gen = torch.Generator().manual_seed(7)
    lora = LowRankUpdate("layer", torch.randn(2, IN, generator=gen), torch.randn(OUT, 2, generator=gen))
    pairs = _pairs(3)
    updates = solve_jointly("layer", layer, pairs, [lora], chol, repeat_cosine=0.999)
    for p in pairs:
        assert torch.allclose(_maps(layer, [lora, *updates], p), p.value.double(), atol=1e-4)


def test_a_repeated_key_keeps_its_latest_value() -> None:
    layer, chol = _setup()
    first, other = _pairs(2)
    again = KeyValue(first.key * 1.0000001, first.value + 5.0, first.label)
    updates = solve_jointly("layer", layer, [first, other, again], [], chol, repeat_cosine=0.999)
    assert len(updates) == 2
    assert torch.allclose(_maps(layer, updates, again), again.value.double(), atol=1e-3)
    assert torch.allclose(_maps(layer, updates, other), other.value.double(), atol=1e-3)


def test_the_solve_of_no_keys_is_no_update() -> None:
    layer, chol = _setup()
    assert solve_jointly("layer", layer, [], [], chol, repeat_cosine=0.999) == []


def _norm(updates: list[LowRankUpdate]) -> float:
    return float(Delta.of(updates).dense("layer").norm())


def test_with_a_ridge_distinct_keys_still_reach_their_values() -> None:
    layer, chol = _setup()
    pairs = _pairs(4)
    updates = solve_jointly("layer", layer, pairs, [], chol, 0.999, ridge=1e-3)
    for p in pairs:
        wanted = p.value.double() - _maps(layer, [], p)
        missed = p.value.double() - _maps(layer, updates, p)
        assert float(missed.norm()) < 0.01 * float(wanted.norm())


def test_a_ridge_keeps_near_parallel_keys_with_different_values_from_growing_the_update() -> None:
    """Two near-parallel keys asking for different values: exact, the update is huge; with the ridge it
    stays the size of an ordinary edit, and the keys meet between their values."""
    layer, chol = _setup()
    held, _ = _pairs(2)
    gen = torch.Generator().manual_seed(3)
    near = KeyValue(held.key + 1e-2 * torch.randn(IN, generator=gen), held.value + 3.0, label_for("other"))
    distinct = 1.0  # no key counts as a repeat of another here, however close
    exact = solve_jointly("layer", layer, [held, near], [], chol, distinct)
    ridged = solve_jointly("layer", layer, [held, near], [], chol, distinct, ridge=1e-3)
    alone = solve_jointly("layer", layer, [held], [], chol, distinct)
    assert torch.allclose(_maps(layer, exact, near), near.value.double(), atol=0.05)  # float32 factors
    assert _norm(ridged) < 0.1 * _norm(exact)
    assert _norm(ridged) < 2 * _norm(alone)
    middle = (held.value.double() + near.value.double()) / 2
    for p in (held, near):
        assert float((_maps(layer, ridged, p) - middle).norm()) < 0.5 * float((p.value - middle).norm())


def test_held_drift_reads_how_far_the_memory_moved_each_held_key() -> None:
    """A held key's drift is the memory's change of the output there relative to that output without it;
    keys with a value of their own, and updates of other editors or modules, are not ROME's memory."""
    layer, chol = _setup()
    facts = _pairs(2)
    held_key = torch.randn(IN, generator=torch.Generator().manual_seed(7))
    without = module_output(layer, held_key.double()[:, None], [])[:, 0]
    held = KeyValue(held_key, without, held_label(facts[0].label))
    solved = solve_jointly("layer", layer, [*facts, held], [], chol, repeat_cosine=0.999)
    assert float(held_drift(layer, solved, [], chol).max()) < 1e-6  # exact solve: held where it was

    push = torch.randn(OUT, 1, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    nudge = LowRankUpdate(
        "layer", down=down_row(held_key, chol)[None, :].float(), up=push.float(), label=SHARED_LABEL
    )
    other = LowRankUpdate("layer", down=torch.zeros(1, IN), up=torch.zeros(OUT, 1), label="lora:x")
    own, others = split_own([*solved, nudge, other], "layer")
    assert own == [*solved, nudge] and others == [other]
    drift = held_drift(layer, own, others, chol)  # held: the solved key and the nudge's own
    assert drift.shape == (2,)
    expected = float(push.norm() / without.double().norm())  # the nudge reads 1 at its key: moved by push
    assert abs(float(drift[0]) - expected) < 1e-4 * expected
    assert len(held_drift(layer, solved[:2], [], chol)) == 0  # no held key, nothing to report


def test_a_keys_own_slack_replaces_the_ridge_and_the_last_repeat_keeps_its_own() -> None:
    """A key with slack s reaches 1/(1 + s) of its change when alone, whatever the solve's ridge; the
    other keys keep the ridge; of two repeats of one key, the later one's slack is the one that holds."""
    layer, chol = _setup()
    facts = _pairs(3)
    soft = KeyValue(facts[0].key, facts[0].value, facts[0].label, slack=1.0)

    def reached(updates: list[LowRankUpdate], p: KeyValue) -> float:
        wanted = p.value.double() - _maps(layer, [], p)
        return float((_maps(layer, updates, p) - _maps(layer, [], p)) @ wanted / (wanted @ wanted))

    alone = solve_jointly("layer", layer, [soft], [], chol, 0.999, ridge=1e-3)
    assert abs(reached(alone, soft) - 0.5) < 1e-3
    mixed = solve_jointly("layer", layer, [soft, *facts[1:]], [], chol, 0.999, ridge=1e-3)
    assert reached(mixed, soft) < 0.9
    assert all(reached(mixed, p) > 0.98 for p in facts[1:])
    later_exact = solve_jointly("layer", layer, [soft, facts[0]], [], chol, 0.999, ridge=1e-3)
    later_soft = solve_jointly("layer", layer, [facts[0], soft], [], chol, 0.999, ridge=1e-3)
    assert len(later_exact) == len(later_soft) == 1
    assert reached(later_exact, soft) > 0.99 and abs(reached(later_soft, soft) - 0.5) < 1e-3
