"""The gradient editors' locality anchor: zero on the model it was taken from, and it sees (and pulls back
on) a change at the answer position of an unrelated chat question."""

from __future__ import annotations

import pytest
import torch

from agent.llm import ChatLM
from consolidation.editors.anchor import ANCHOR_QUESTIONS, AnswerAnchor
from consolidation.editors.training import added_outputs, frozen

pytestmark = pytest.mark.slow

MODULE = "model.layers.8.mlp.down_proj"


def test_anchor_is_zero_on_its_own_model_and_ends_on_the_models_answer(lm: ChatLM) -> None:
    anchor = AnswerAnchor(lm.model, lm.tokenizer, ANCHOR_QUESTIONS[:3], answer_tokens=3)
    assert float(anchor(lm.model)) == pytest.approx(0.0, abs=1e-6)
    assert anchor.ref.shape[:2] == (3, 3)
    row = [int(t) for t, m in zip(anchor.ids[0], anchor.mask[0], strict=True) if m]
    prompt_len = len(
        lm.tokenizer(
            lm.tokenizer.apply_chat_template(
                [{"role": "user", "content": ANCHOR_QUESTIONS[0]}], add_generation_prompt=True, tokenize=False
            ),
            add_special_tokens=False,
        )["input_ids"]
    )
    assert len(row) == prompt_len + 2  # the prompt, then the model's first two answer tokens
    assert int(anchor.ref[0, 0].argmax()) == row[prompt_len]  # teacher-forced on its own greedy answer


def test_anchor_penalises_a_shift_and_its_gradient_undoes_it(lm: ChatLM) -> None:
    anchor = AnswerAnchor(lm.model, lm.tokenizer, ANCHOR_QUESTIONS[:4], answer_tokens=2)
    torch.manual_seed(0)
    shift = torch.nn.Parameter(torch.randn(576) * 0.5)
    with frozen(lm.model), added_outputs(lm.model, {MODULE: lambda _x: shift}), torch.enable_grad():
        before = anchor(lm.model)
        before.backward()
        assert float(before) > 1e-3
        with torch.no_grad():
            shift -= 0.05 * shift.grad / shift.grad.norm() * shift.norm()  # a small step down its gradient
        after = float(anchor(lm.model))
    assert after < float(before)
    assert all(not p.requires_grad or p.grad is None for p in lm.model.parameters())
