"""The composition root wires consolidation's holds of recalled words only when the setting asks for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.llm import ChatLM
from agent.prompts import recall_context
from api.runtime import build_runtime
from api.settings import Settings
from memory.embedder import Embedder

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("hold", [False, True])
def test_recalled_words_are_held_only_when_set(
    tmp_path: Path, lm: ChatLM, embedder: Embedder, hold: bool
) -> None:
    """Off by default (100 held edits cost locality, docs/results.md); on, an edit holds the system turn
    the agent's recall builds, rendered by the served tokenizer."""
    settings = Settings(state_dir=tmp_path, consolidation_hold_recalled_words=hold)
    assert Settings(state_dir=tmp_path).consolidation_hold_recalled_words is False
    rt = build_runtime(settings, embedder=embedder, lm=lm)
    try:
        render = rt.require_consolidation().consolidator.recall_render
        assert (render is not None) is hold
        if render is not None:
            assert render(['"I love to garden."']) == recall_context(lm.tokenizer, ['"I love to garden."'])
    finally:
        rt.close()
