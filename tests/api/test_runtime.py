"""The composition root against a real `chroma run` server (IMPRINT_CHROMA=host:port)."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.runtime import build_runtime
from api.settings import Settings
from memory.embedder import Embedder
from memory.observations import Observation, Polarity

pytestmark = pytest.mark.server


def test_runtime_uses_a_chroma_server(tmp_path: Path, chroma_server: str, embedder: Embedder) -> None:
    settings = Settings(state_dir=tmp_path, chroma=chroma_server)
    rt = build_runtime(settings, with_model=False, embedder=embedder)
    try:
        user = "server-user"
        rt.store.add(
            Observation(
                user_id=user,
                evidence="I love jazz.",
                aspect="music",
                value="jazz",
                polarity=Polarity.LIKES,
                confidence=0.9,
            )
        )
        hits = rt.recaller.recall(user, "Any music recommendations?")
        assert [h.observation.value for h in hits] == ["jazz"]
        assert not settings.chroma_path.exists()  # nothing was written to an embedded store
    finally:
        rt.close()
