"""Fixtures of the consolidation tests: a fresh consolidation world per test, ROME statistics per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.llm import ChatLM
from memory.embedder import Embedder
from tests.consolidation.world import World, make_world


@pytest.fixture(scope="module")
def rome_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rome")


@pytest.fixture
def world(tmp_path: Path, lm: ChatLM, embedder: Embedder, rome_cache: Path) -> Iterator[World]:
    yield from make_world(tmp_path, lm, embedder, rome_cache)
