"""The chat benchmark's users carry the memory consolidation writes, so a turn pays for a served delta."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.llm import ChatLM
from api.runtime import build_runtime
from api.settings import Settings
from consolidation.editors.rome.joint import SHARED_LABEL, held_label, label_for
from eval.bench_chat import CONSOLIDATED, USER, ChatBenchPlan, _seed_user
from memory.embedder import Embedder
from memory.observations import Status
from tests.consolidation.rome_helpers import rome_editor

pytestmark = pytest.mark.slow


def test_seeded_users_hold_rome_memory_as_served(tmp_path: Path, lm: ChatLM, embedder: Embedder) -> None:
    """Two edits about the same subject ("hobby", the first UPQA records) leave one fact with its pins, as
    `compute_memory` writes it, for both users alike; bare increments would stack two unpinned updates."""
    settings = Settings(state_dir=tmp_path / "state")
    rt = build_runtime(settings, embedder=embedder, lm=lm)
    try:
        _seed_user(rt, settings, ChatBenchPlan(memories=2, edits=2), rome_editor(tmp_path / "stats"))
        weights = rt.require_weights()
        pending, consolidated = weights.delta(USER), weights.delta(CONSOLIDATED)
        labels = [u.label for u in pending]
        assert labels == [u.label for u in consolidated]
        assert {label_for("hobby"), held_label(label_for("hobby")), SHARED_LABEL} <= set(labels)
        assert len(weights.versions(USER)) == 2
        statuses = {o.status for o in rt.store.list(CONSOLIDATED)}
        assert statuses == {Status.IN_WEIGHTS}
    finally:
        rt.close()
