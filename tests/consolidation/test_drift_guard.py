"""The drift guard on the real model and the default probes: a normal edit passes, destructive candidates
fail, and a rejected commit leaves the user's memory and answers exactly as they were."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from agent.llm import ChatLM
from api.settings import Settings
from consolidation.drift import DriftConfig, DriftGate, DriftGuard
from consolidation.editors import EditRequest, get_editor
from consolidation.judge import TargetJudge
from consolidation.metrics import greedy_answers
from memory.embedder import Embedder
from memory.weights.delta import Delta, LowRankUpdate
from memory.weights.gate import CommitRejected
from memory.weights.weight_memory import WeightMemory

pytestmark = pytest.mark.slow

QUESTION = "What's my favorite cuisine?"
PROBE_QUESTIONS = [QUESTION, "What is the capital of France?", "How do I boil an egg?"]


@pytest.fixture(scope="module")
def guard(lm: ChatLM, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> DriftGuard:
    config = DriftConfig(data_dir=Settings().data_dir, cache_dir=tmp_path_factory.mktemp("drift"))
    return DriftGuard(lm.model, lm.tokenizer, config, TargetJudge(embedder))


@pytest.fixture(scope="module")
def normal(lm: ChatLM, tmp_path_factory: pytest.TempPathFactory) -> Delta:
    """One ROME edit of the default editor (statistics from a small sample, to keep the test short)."""
    prompt = lm.tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], add_generation_prompt=True, tokenize=False
    )
    editor = get_editor(
        "rome",
        data_dir=Settings().data_dir,
        cov_cache_dir=tmp_path_factory.mktemp("rome"),
        cov_tokens=4000,
    )
    request = EditRequest(prompt=prompt, subject="favorite cuisine", target="Ethiopian")
    return editor.compute_memory(lm.model, lm.tokenizer, [request], Delta())


def _scaled(delta: Delta, factor: float) -> Delta:
    return Delta.of(
        LowRankUpdate(module=u.module, down=u.down, up=u.up * factor, label=u.label) for u in delta
    )


def _random_middle_layer(lm: ChatLM) -> Delta:
    """A rank-8 random ΔW on layer 15's MLP output, as large as the weight itself."""
    name = "model.layers.15.mlp.down_proj"
    weight = lm.model.get_submodule(name).weight
    gen = torch.Generator().manual_seed(0)
    down = torch.randn(8, weight.shape[1], generator=gen)
    up = torch.randn(weight.shape[0], 8, generator=gen)
    up *= float(weight.detach().norm()) / float((up @ down).norm())
    return Delta.of([LowRankUpdate(module=name, down=down, up=up)])


def test_a_normal_edit_passes(guard: DriftGuard, normal: Delta) -> None:
    report = guard.check(normal)
    assert report.passed, report.table()
    names = {c.name for c in report.checks}
    assert {"boolq_accuracy", "nq_loglik", "nq_exact_match", "perplexity", "locality_kl"} <= names
    assert report.check("boolq_accuracy").base is not None and report.check("perplexity").candidate > 0


@pytest.mark.parametrize("kind", ["rome_x50", "random_middle_layer"])
def test_a_destructive_candidate_fails(guard: DriftGuard, normal: Delta, lm: ChatLM, kind: str) -> None:
    candidate = _scaled(normal, 50.0) if kind == "rome_x50" else _random_middle_layer(lm)
    report = guard.check(candidate)
    assert not report.passed
    failed = {c.name.split(":")[0] for c in report.checks if not c.passed}
    assert failed & {"boolq_accuracy", "boolq_margin", "nq_loglik", "perplexity", "locality_kl"}, failed


def test_a_scoped_memory_is_held_to_what_it_reaches_not_to_its_size(
    guard: DriftGuard, normal: Delta, lm: ChatLM
) -> None:
    """ROME's default memory is scoped: it adds nothing where its scope is closed, so the tight norm bound
    holds for the part that applies everywhere (none of it) and its reach is counted on held-out text.
    The same factors unscoped fail that bound, and a scope that opens at every token fails its reach."""
    assert normal.is_scoped()
    (name,) = normal.modules()
    config = replace(guard.config, probes=("ppl", "norm"), max_norm_growth=0.0)
    tight = DriftGuard(lm.model, lm.tokenizer, config)
    report = tight.check(normal)
    assert report.passed, report.table()
    assert report.check(f"norm_growth:{name}").candidate > 0.0  # the update has a size...
    assert (
        report.check(f"norm_growth_every_token:{name}").candidate == 0.0
    )  # ...none of it applies everywhere
    assert 0.0 <= report.check(f"scope_open_share:{name}").candidate <= config.max_scope_open_share

    unscoped = Delta.of(LowRankUpdate(module=u.module, down=u.down, up=u.up, label=u.label) for u in normal)
    report = tight.check(unscoped)
    assert not report.check(f"norm_growth:{name}").passed
    assert not any(c.name.startswith("scope_open_share") for c in report.checks)

    everywhere = Delta.of(
        LowRankUpdate.in_scope(u.module, u.down, u.up, u.label, opens_at=1e-12) for u in normal
    )
    report = tight.check(everywhere)
    assert report.check(f"scope_open_share:{name}").candidate > 0.99 and not report.passed


def test_a_rejected_commit_leaves_the_user_as_before(
    guard: DriftGuard, normal: Delta, lm: ChatLM, tmp_path: Path
) -> None:
    weights = WeightMemory(tmp_path / "weights", lm.model, gate=DriftGate(guard))
    provenance = {"subject": "favorite cuisine", "question": QUESTION, "target": "Ethiopian"}
    info = weights.commit(
        "u1", normal, whole=True, editor="rome", settings={}, requests=[provenance], metrics={}, seconds=1.0
    )
    assert info.version == 1 and info.drift is not None and info.drift["passed"] is True
    with weights.applied("u1"):
        before = greedy_answers(lm.model, lm.tokenizer, PROBE_QUESTIONS, 12)
    with pytest.raises(CommitRejected) as rejected:
        weights.commit(
            "u1",
            _scaled(normal, 50.0),
            whole=True,
            editor="rome",
            settings={},
            requests=[{"subject": "pet", "question": "Which pet do I have?", "target": "A cat"}],
            metrics={},
            seconds=1.0,
        )
    assert rejected.value.verdict.reasons and not rejected.value.verdict.passed
    assert weights.head("u1") == 1 and len(weights.versions("u1")) == 1
    assert not list((tmp_path / "weights" / "users" / "u1").glob("v0002*"))
    with weights.applied("u1"):
        assert greedy_answers(lm.model, lm.tokenizer, PROBE_QUESTIONS, 12) == before
    weights.close()
