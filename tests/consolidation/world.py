"""A consolidation world for tests: real chromadb, history, weight memory behind a real drift gate on small
probes, ROME, and the consolidator over them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.llm import ChatLM
from api.settings import Settings
from consolidation.absorbed import AbsorbedLog
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

USER = "mia"


@dataclass
class World:
    store: ObservationStore
    weights: WeightMemory
    consolidator: Consolidator
    lm: ChatLM
    judge: TargetJudge


def small_probes(cache: Path, **overrides: float) -> DriftConfig:
    """The real guard on fewer items, so a check takes seconds; the default sizes are tested elsewhere."""
    return DriftConfig(
        data_dir=Settings().data_dir,
        cache_dir=cache,
        boolq_items=24,
        nq_items=24,
        ppl_tokens=1024,
        locality_prompts=16,
        **overrides,  # type: ignore[arg-type]
    )


def make_world(
    tmp: Path, lm: ChatLM, embedder: Embedder, rome_cache: Path, **drift: float
) -> Iterator[World]:
    history = History(tmp / "history.sqlite")
    store = ObservationStore(make_client(path=tmp / "chroma"), embedder, history, collection="obs")
    judge = TargetJudge(embedder)
    guard = DriftGuard(lm.model, lm.tokenizer, small_probes(rome_cache / "drift", **drift), judge)
    weights = WeightMemory(tmp / "weights", lm.model, gate=DriftGate(guard))
    editor = get_editor("rome", data_dir=Settings().data_dir, cov_cache_dir=rome_cache, cov_tokens=4000)
    absorbed = AbsorbedLog(tmp / "consolidation.sqlite")
    consolidator = Consolidator(
        store, weights, editor, lm.model, lm.tokenizer, embedder, judge, absorbed=absorbed
    )
    yield World(store, weights, consolidator, lm, judge)
    weights.close()
    absorbed.close()
    history.close()


def observe(w: World, aspect: str, value: str, thread: str, t: float, **kw: object) -> Observation:
    obs = Observation(
        user_id=USER,
        evidence=f"({aspect}) {value}",
        aspect=aspect,
        value=value,
        polarity=Polarity.LIKES,
        confidence=float(kw.pop("confidence", 0.6)),  # type: ignore[arg-type]
        thread_id=thread,
        created_at=t,
        explicit=bool(kw.pop("explicit", False)),
    )
    return w.store.add(obs)
