"""An evaluation's edit is the edit the service would make: the user's whole memory, not a bare increment."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agent.llm import ChatLM
from consolidation.editors import EditRequest
from consolidation.editors.rome.joint import SHARED_LABEL, held_label
from eval.workspace import Workspace
from memory.embedder import Embedder
from memory.weights.delta import Delta
from tests.consolidation.rome_helpers import chat, greedy, rome_editor

pytestmark = pytest.mark.slow


def test_an_items_edit_is_what_consolidation_writes_for_a_first_fact(
    tmp_path: Path, lm: ChatLM, embedder: Embedder
) -> None:
    """`Workspace.edit` stores `compute_memory` onto an empty memory, pins and all, factor for factor; the
    bare increment (`compute_delta`) has no pins, so an answer measured on it would not be the service's."""
    editor = rome_editor(tmp_path / "stats")
    request = EditRequest(prompt=chat(lm, "What's my hobby?"), subject="hobby", target="Pottery")
    workspace = Workspace(tmp_path / "state", lm.model, lm.tokenizer, embedder, {"rome": editor})
    try:
        workspace.edit("item-0", "rome", request, {"record": 0})
        stored = workspace.weights.delta("item-0")
        served = editor.compute_memory(lm.model, lm.tokenizer, [request], Delta())
        bare = editor.compute_delta(lm.model, lm.tokenizer, [request])

        assert [u.label for u in stored] == [u.label for u in served]
        assert {held_label("rome:hobby"), SHARED_LABEL} <= {u.label for u in stored}
        assert not {held_label("rome:hobby"), SHARED_LABEL} & {u.label for u in bare}
        for a, b in zip(stored, served, strict=True):
            assert torch.allclose(a.up @ a.down, b.up @ b.down, atol=1e-5)
        with workspace.applied("item-0"):
            assert "Pottery" in greedy(lm, lm.model, request.prompt, 8)
        first = workspace.weights.versions("item-0")
        assert workspace.edit("item-0", "rome", request, {"record": 0}) == first[-1].seconds
        assert len(workspace.weights.versions("item-0")) == 1  # a resumed run edits no second time
    finally:
        workspace.close()
