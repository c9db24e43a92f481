"""The drift guard's pieces that need no model: the paired test, retention probes, reports, settings, and
the scope's open share counted per thread."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from consolidation.drift import Check, DriftConfig, DriftReport, retention_items
from consolidation.drift.norms import counting_opens
from consolidation.drift.scoring import normalize_answer
from consolidation.drift.stats import paired_change
from memory.weights.delta import Delta, LowRankUpdate


def test_no_change_is_not_a_drop() -> None:
    scores = [1.0, 0.0] * 100
    pc = paired_change(scores, scores, tolerance=0.0, alpha=0.01, resamples=500, seed=0)
    assert pc.change == 0 and not pc.worse


def test_a_drop_beyond_noise_is_worse_and_a_small_one_is_not() -> None:
    base = [1.0] * 200
    many = [0.0] * 20 + [1.0] * 180  # 20 answers of 200 lost: ten points
    few = [0.0] * 2 + [1.0] * 198  # two answers lost: one point, inside a one-point tolerance
    assert paired_change(base, many, 0.01, 0.01, 2000, 0).worse
    assert not paired_change(base, few, 0.01, 0.01, 2000, 0).worse
    assert not paired_change(many, base, 0.0, 0.01, 2000, 0).worse  # better is never worse


def test_paired_scores_must_pair_up() -> None:
    with pytest.raises(ValueError):
        paired_change([1.0], [1.0, 0.0], 0.0, 0.01, 10, 0)


def test_retention_keeps_the_latest_live_preference_per_subject() -> None:
    earlier = [
        {"subject": "diet", "question": "What do I eat?", "target": "steak"},
        {"subject": "pet", "question": "Which pet?", "target": "a cat"},
        {"subject": "Pet", "question": "Which pet?", "target": "a dog"},
        {"subject": "music", "target": "jazz"},  # no question: cannot be re-asked
    ]
    items = retention_items(earlier, [{"subject": "diet", "question": "What do I eat?", "target": "tofu"}])
    assert [(i.question, i.targets) for i in items] == [("Which pet?", ("a dog",))]


def test_a_report_passes_only_if_every_check_does_and_round_trips() -> None:
    ok = Check(name="boolq_accuracy", candidate=0.6, base=0.61, rule="r", passed=True)
    bad = Check(name="perplexity", candidate=30.0, base=20.0, rule="r", passed=False, reason="rose 50%")
    report = DriftReport(checks=[ok, bad], seconds=1.5)
    assert not report.passed and report.reasons == ["perplexity: rose 50%"]
    again = DriftReport.from_dict(report.to_dict())
    assert again == report and again.check("perplexity").change == pytest.approx(10.0)
    assert DriftReport(checks=[ok], seconds=0.1).passed
    assert "FAIL: rose 50%" in report.table()


def test_unknown_probes_and_empty_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown drift probes"):
        DriftConfig(probes=("boolq", "mmlu"))
    with pytest.raises(ValueError, match="boolq_items"):
        DriftConfig(boolq_items=0)


def test_answers_are_normalised_like_squad() -> None:
    assert normalize_answer("The  Beatles!") == "beatles"
    assert normalize_answer("14 December, 1972") == "14 december 1972"


def test_the_open_share_counts_this_threads_tokens_not_a_chat_served_meanwhile() -> None:
    """The guard's reach measure runs while chat turns use the same model in other threads; a turn whose
    prompt opens the scope on every token must not raise the share of the held-out text."""
    model = nn.Sequential()
    model.add_module("m", nn.Linear(4, 2))
    opener = LowRankUpdate.in_scope("m", torch.eye(4)[0:1], torch.ones(2, 1), opens_at=0.5)
    held_out = torch.zeros(4, 4)
    held_out[0, 0] = 1.0  # one of four tokens reads 1 ≥ 0.5 along the opener's row
    chat = torch.ones(6, 4)  # every token opens it
    with torch.no_grad(), counting_opens(model, Delta.of([opener])) as share:
        model.m(held_out)
        other = threading.Thread(target=lambda: model.m(chat))
        other.start()
        other.join()
    assert share == {"m": 0.25}
    with torch.no_grad(), counting_opens(model, Delta.of([opener])) as share:
        model.m(chat)
    assert share == {"m": 1.0}  # the same tokens count when this thread runs them
