"""ROME holds a request's `held_contexts`: the recalled line beside the weights reads as it did before."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from agent.llm import ChatLM
from agent.prompts import recall_context
from consolidation.editors import EditRequest
from consolidation.editors.rome.joint import held_label, label_for
from consolidation.editors.rome.keys import text_inputs
from memory.weights.delta import Delta
from memory.weights.hooks import DeltaApplier
from tests.consolidation.rome_helpers import chat, greedy, rome_editor

pytestmark = pytest.mark.slow


def _moved(lm: ChatLM, module_name: str, memory: Delta, text: str) -> torch.Tensor:
    """Per token of `text`: how far `memory` moves the edited module's output, relative to the output."""
    module = lm.model.get_submodule(module_name)
    x = text_inputs(lm.model, lm.tokenizer, module_name, [text])
    with torch.no_grad():
        base = module(x)
        change = sum(
            ((x @ u.down.T) @ u.up.T for u in memory if u.module == module_name), torch.zeros_like(base)
        )
    return change.norm(dim=-1) / base.norm(dim=-1)


def test_a_held_recall_context_keeps_its_tokens_and_the_edit_still_answers(
    tmp_path: Path, lm: ChatLM
) -> None:
    """Unheld, the edit moves the module's output at the recalled line's words (52% at its largest here);
    held, every token of the line stays within the joint solve's ridge of where it was, under the fact's
    held label, and the edit's own question still gets the target."""
    editor = rome_editor(tmp_path / "stats")
    module_name = editor.config.module_name()
    context = recall_context(lm.tokenizer, ['"I love to garden."'])
    request = EditRequest(prompt=chat(lm, "What's my hobby?"), subject="hobby", target="Pottery")
    free = editor.compute_memory(lm.model, lm.tokenizer, [request], Delta())
    held = editor.compute_memory(lm.model, lm.tokenizer, [replace(request, held_contexts=[context])], Delta())

    moved_free, moved_held = _moved(lm, module_name, free, context), _moved(lm, module_name, held, context)
    assert float(moved_free.max()) > 0.1
    assert float(moved_held.max()) < 0.02
    assert len(held) > len(free)
    assert held_label(label_for("hobby")) in {u.label for u in held}
    with DeltaApplier(lm.model).activate(held):
        assert "Pottery" in greedy(lm, lm.model, request.prompt, 8)


def test_an_editor_told_not_to_hold_contexts_ignores_them(tmp_path: Path, lm: ChatLM) -> None:
    """`hold_contexts=False` is the editor before this setting: the same memory with or without contexts."""
    editor = rome_editor(tmp_path / "stats", hold_contexts=False)
    request = EditRequest(prompt=chat(lm, "What's my hobby?"), subject="hobby", target="Pottery")
    context = recall_context(lm.tokenizer, ['"I love to garden."'])
    plain = editor.compute_memory(lm.model, lm.tokenizer, [request], Delta())
    ignored = editor.compute_memory(
        lm.model, lm.tokenizer, [replace(request, held_contexts=[context])], Delta()
    )
    assert [u.label for u in plain] == [u.label for u in ignored]
    for a, b in zip(plain, ignored, strict=True):
        assert torch.equal(a.up @ a.down, b.up @ b.down)
