"""A runtime over a temporary state directory, built once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.llm import ChatLM
from api.runtime import Runtime, build_runtime
from api.settings import Settings
from memory.embedder import Embedder


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, lm: ChatLM) -> Iterator[Runtime]:
    """A whole deployment (embedded chromadb, SQLite threads) with short answers to keep tests quick."""
    settings = Settings(state_dir=tmp_path_factory.mktemp("state"), max_new_tokens=16)
    rt = build_runtime(settings, embedder=embedder, lm=lm)
    yield rt
    rt.close()
