"""Edit metrics on the real model: batched answers, locality, efficacy on questions it already knows."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agent.llm import ChatLM
from api.settings import Settings
from consolidation.judge import TargetJudge
from consolidation.metrics import (
    ProbeItem,
    edit_scores,
    greedy_answers,
    locality,
    locality_flips,
    neutral_prompts,
    next_token_logprobs,
)
from memory.embedder import Embedder

pytestmark = pytest.mark.slow

QUESTIONS = ["What is the capital of France?", "Name a primary colour.", "What do bees make?"]


def _data_dir() -> Path:
    data_dir = Settings().data_dir
    assert data_dir is not None, "tests need the data directory (../shared/data or IMPRINT_DATA_DIR)"
    return data_dir


def test_batched_answers_equal_one_by_one(lm: ChatLM) -> None:
    batched = greedy_answers(lm.model, lm.tokenizer, QUESTIONS, max_new_tokens=8)
    single = [greedy_answers(lm.model, lm.tokenizer, [q], max_new_tokens=8)[0] for q in QUESTIONS]
    assert batched == single
    assert all(batched)


def test_locality_is_perfect_for_the_same_model_and_drops_under_noise(lm: ChatLM) -> None:
    prompts = neutral_prompts(_data_dir(), n=12)
    base = next_token_logprobs(lm.model, lm.tokenizer, prompts)
    again = next_token_logprobs(lm.model, lm.tokenizer, prompts)
    same = locality(base, again)
    assert same["locality"] == 1.0 and same["locality_kl"] < 1e-6
    assert locality_flips(base, again, prompts, lm.tokenizer) == []

    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(576, generator=gen) * 5.0
    layer = lm.model.get_submodule("model.layers.8.mlp.down_proj")
    handle = layer.register_forward_hook(lambda _m, _i, out: out + noise)
    try:
        edited = next_token_logprobs(lm.model, lm.tokenizer, prompts)
    finally:
        handle.remove()
    noisy = locality(base, edited)
    assert noisy["locality_kl"] > 0.01
    assert noisy["locality"] < 1.0
    flips = locality_flips(base, edited, prompts, lm.tokenizer)
    assert len(flips) == round((1 - noisy["locality"]) * len(prompts))
    for flip in flips:  # each names its prompt, both tokens, and how close the base model's top two were
        i = prompts.index(flip["prompt"])
        assert flip["base"] == lm.tokenizer.decode(int(base[i].argmax()))
        assert flip["edited"] == lm.tokenizer.decode(int(edited[i].argmax())) != flip["base"]
        top2 = base[i].topk(2).values
        assert flip["base_margin"] == pytest.approx(float(top2[0] - top2[1]), abs=1e-4)
    with pytest.raises(ValueError):
        locality_flips(base, edited, prompts[:-1], lm.tokenizer)


def test_neutral_prompts_are_seeded_and_sized() -> None:
    a, b = neutral_prompts(_data_dir(), n=50, seed=3), neutral_prompts(_data_dir(), n=50, seed=3)
    assert a == b and len(a) == 50 and len(set(a)) == 50
    assert neutral_prompts(_data_dir(), n=50, seed=4) != a


def test_edit_scores_on_the_base_model(lm: ChatLM, embedder: Embedder) -> None:
    known = ProbeItem(question="What is the capital of France?", targets=("Paris",))
    unknown = ProbeItem(
        question="What's my favorite cuisine?",
        targets=("Ethiopian",),
        paraphrase="Which food do I like best?",
    )
    scores = edit_scores(lm.model, lm.tokenizer, TargetJudge(embedder), [known, unknown], max_new_tokens=16)
    assert scores["efficacy"] == 0.5
    assert scores["per_item"][0]["efficacy"]["hit"] is True
    assert scores["per_item"][1]["efficacy"]["hit"] is False
    assert scores["paraphrase"] == 0.0
    assert "implicit" not in scores
