"""A consolidation in a process of its own, for the crash-safety test: `python -m
tests.consolidation.crash_worker STATE_DIR ROME_CACHE` with IMPRINT_CRASH_AT naming where it dies.

It builds the same pieces the service does (embedded chromadb, history, weight memory with the drift gate
on small probes, ROME), stores the scripted observations on first use, and runs one consolidation.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agent.llm import ChatLM
from agent.model_loading import load_model
from api.settings import Settings
from consolidation.drift import DriftConfig, DriftGate, DriftGuard
from consolidation.editors import get_editor
from consolidation.judge import TargetJudge
from consolidation.pipeline import Consolidator
from memory.chroma import make_client
from memory.embedder import Embedder
from memory.history import History
from memory.observations import Observation, Polarity
from memory.store import ObservationStore
from memory.weights.weight_memory import WeightMemory

USER = "kai"
SCRIPT = [  # (id, aspect, value, thread, time): two preferences, each seen in two conversations
    ("obs-hobby-1", "hobbies", "woodworking", "s1", 1.0),
    ("obs-hobby-2", "hobbies", "woodworking projects", "s2", 2.0),
    ("obs-drink-1", "drinks", "green tea", "s2", 3.0),
    ("obs-drink-2", "drinks", "matcha green tea", "s3", 4.0),
]


@dataclass
class Pieces:
    store: ObservationStore
    weights: WeightMemory
    consolidator: Consolidator


@contextmanager
def pieces(state: Path, rome_cache: Path, lm: ChatLM, embedder: Embedder) -> Iterator[Pieces]:
    """What a (re)started service holds for `state`; orphaned delta files are removed on the way in."""
    history = History(state / "history.sqlite")
    store = ObservationStore(make_client(path=state / "chroma"), embedder, history, collection="obs")
    judge = TargetJudge(embedder)
    config = DriftConfig(
        data_dir=Settings().data_dir,
        cache_dir=rome_cache / "drift",
        boolq_items=24,
        nq_items=24,
        ppl_tokens=1024,
        locality_prompts=16,
    )
    weights = WeightMemory(
        state / "weights", lm.model, gate=DriftGate(DriftGuard(lm.model, lm.tokenizer, config, judge))
    )
    editor = get_editor("rome", data_dir=Settings().data_dir, cov_cache_dir=rome_cache, cov_tokens=4000)
    try:
        yield Pieces(
            store, weights, Consolidator(store, weights, editor, lm.model, lm.tokenizer, embedder, judge)
        )
    finally:
        weights.close()
        history.close()


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
