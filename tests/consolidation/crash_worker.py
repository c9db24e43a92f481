"""A consolidation in a process of its own, for the crash-safety test: `python -m
tests.consolidation.crash_worker STATE_DIR ROME_CACHE` with IMPRINT_CRASH_AT naming where it dies.

It builds the same pieces the service does (embedded chromadb, history, weight memory with the drift gate
on small probes, ROME), stores the scripted observations on first use, and runs one consolidation.
"""

from __future__ import annotations

import logging
import sys
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from agent.llm import ChatLM
from agent.model_loading import load_model
from api.settings import Settings
from memory.embedder import Embedder
from memory.observations import Observation, Polarity
from memory.store import ObservationStore
from tests.consolidation.world import World, make_world

USER = "kai"
SCRIPT = [  # (id, aspect, value, thread, time): two preferences, each seen in two conversations
    ("obs-hobby-1", "hobbies", "woodworking", "s1", 1.0),
    ("obs-hobby-2", "hobbies", "woodworking projects", "s2", 2.0),
    ("obs-drink-1", "drinks", "green tea", "s2", 3.0),
    ("obs-drink-2", "drinks", "matcha green tea", "s3", 4.0),
]


def pieces(state: Path, rome_cache: Path, lm: ChatLM, embedder: Embedder) -> AbstractContextManager[World]:
    """What a (re)started service holds for `state` (the test's consolidation world)."""
    return contextmanager(make_world)(state, lm, embedder, rome_cache)


def seed(store: ObservationStore) -> None:
    """Store the scripted observations unless an earlier run already did."""
    if store.count(USER):
        return
    store.add_many(
        [
            Observation(
                id=obs_id,
                user_id=USER,
                evidence=f"({aspect}) {value}",
                aspect=aspect,
                value=value,
                polarity=Polarity.LIKES,
                confidence=0.6,
                thread_id=thread,
                created_at=t,
            )
            for obs_id, aspect, value, thread, t in SCRIPT
        ]
    )


def main(state: Path, rome_cache: Path) -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    lm = ChatLM(load_model(Settings().model, Settings().model_cache_dir))
    with pieces(state, rome_cache, lm, Embedder()) as p:
        seed(p.store)
        p.consolidator.run(USER)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
