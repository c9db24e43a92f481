"""LoRA served inside its subjects' scope: what is trained is what is served, closed tokens get the base
module's output, and on the real model the preferences answer while other questions keep their logits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agent.llm import ChatLM
from api.settings import Settings
from consolidation.editors import EditRequest, get_editor
from consolidation.editors.everyday import EVERYDAY_QUESTIONS
from consolidation.editors.lora.scope import gated, opener_update
from consolidation.metrics import greedy_answers
from memory.errors import InvalidInput
from memory.weights.delta import Delta, LowRankUpdate
from memory.weights.hooks import DeltaApplier


def test_the_gated_term_trained_is_the_scoped_update_served() -> None:
    """The fit sees `gated(term)`; the user is served the scoped adapter and its opener through the hooks.
    They must be one function of the input, or the adapter would be trained for one model and served
    another."""
    g = torch.Generator().manual_seed(0)
    down, up = torch.randn(4, 6, generator=g), torch.randn(3, 4, generator=g)
    openers = torch.eye(6)[:2] * 2.0  # reads 2·x₀ and 2·x₁
    x = torch.randn(5, 6, generator=g) * 0.1
    x[1, 0], x[3, 1] = 0.3, -0.4  # reads 0.6 and −0.8: open; the rest read below 0.5
    opener = opener_update("m", openers, 0.5, 3, "lora")
    trained = gated(lambda v: v @ down.T @ up.T, opener)(x)
    (served,) = Delta.of([LowRankUpdate.in_scope("m", down, up, label="lora"), opener]).merged()
    y = torch.randn(5, 3, generator=g)
    assert torch.allclose(served.apply_to_output(x, y) - y, trained, atol=1e-6)
    assert trained[[0, 2, 4]].abs().sum() == 0 and trained[[1, 3]].abs().sum() > 0
    assert torch.equal(served.apply_to_output(x[[0, 2, 4]], y[[0, 2, 4]]), y[[0, 2, 4]])  # bit for bit


@pytest.mark.parametrize("scope", [0.0, 1.0, -0.5])
def test_a_scope_outside_zero_to_one_is_refused(scope: float) -> None:
    with pytest.raises(ValueError, match="scope"):
        get_editor("lora", scope=scope)


def test_a_scope_without_its_statistics_text_is_refused_by_name(lm: ChatLM) -> None:
    request = EditRequest(prompt="My {} is", subject="hobby", target="Pottery")
    with pytest.raises(InvalidInput, match="data_dir"):
        get_editor("lora").compute_delta(lm.model, lm.tokenizer, [request])


@pytest.mark.slow
def test_a_scoped_adapter_answers_and_leaves_other_questions_bit_for_bit(lm: ChatLM, tmp_path: Path) -> None:
    """Two preferences fitted with the scope (no anchor) answer; everyday questions about other things get
    the base model's logits exactly. Each edited module holds the adapter's rows, which never open the
    scope, and one opener row per subject with a zero output."""

    def chat(q: str) -> str:
        return str(
            lm.tokenizer.apply_chat_template(
                [{"role": "user", "content": q}], add_generation_prompt=True, tokenize=False
            )
        )

    requests = [
        EditRequest(prompt=chat("What's my hobby?"), subject="hobby", target="Pottery"),
        EditRequest(
            prompt=chat("What's my favorite cuisine?"), subject="favorite cuisine", target="Ethiopian"
        ),
    ]
    questions = [chat(q) for q in EVERYDAY_QUESTIONS[:4]]

    def logits() -> list[torch.Tensor]:
        with torch.no_grad():
            return [lm.model(lm.tokenizer(q, return_tensors="pt").input_ids).logits[0] for q in questions]

    base = logits()
    editor = get_editor(
        "lora",
        scope=0.5,
        kl_factor=0.0,
        data_dir=Settings().data_dir,
        cov_cache_dir=tmp_path,
        cov_tokens=4000,
    )
    memory = editor.compute_memory(lm.model, lm.tokenizer, requests, Delta())
    with DeltaApplier(lm.model).activate(memory):
        answers = greedy_answers(
            lm.model, lm.tokenizer, ["What's my hobby?", "What's my favorite cuisine?"], 8
        )
        assert "pottery" in answers[0].lower() and "ethiopian" in answers[1].lower(), answers
        after = logits()
    assert all(torch.equal(a, b) for a, b in zip(after, base, strict=True))
    merged = memory.merged()
    assert len(merged) == 5
    for u in merged:
        assert u.scoped is not None and u.opens_at is not None and bool(u.scoped.all())
        assert u.rank == 4 + 2  # the adapter's rows, then one opener per subject
        assert torch.isinf(u.opens_at[:4]).all() and torch.equal(u.opens_at[4:], torch.full((2,), 0.5))
        assert not u.up[:, 4:].any()  # openers only gate
    unscoped = get_editor("lora", scope=None, max_steps=1).compute_delta(lm.model, lm.tokenizer, requests[:1])
    assert not unscoped.is_scoped() and [u.rank for u in unscoped] == [4] * 5  # scope=none: as before
