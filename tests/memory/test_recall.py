"""Recall over a real embedded chromadb: relevance, status, duplicates, the token budget, isolation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memory.chroma import make_client
from memory.embedder import Embedder
from memory.history import History
from memory.observations import Observation, Polarity, Status
from memory.recall import RecallConfig, Recaller, format_memory_line
from memory.store import ObservationStore


@pytest.fixture
def store(tmp_path: Path, embedder: Embedder) -> Iterator[ObservationStore]:
    history = History(tmp_path / "history.sqlite")
    yield ObservationStore(make_client(path=tmp_path / "chroma"), embedder, history)
    history.close()


def obs(user: str, evidence: str, aspect: str, value: str, **kw: object) -> Observation:
    fields: dict = {"polarity": Polarity.LIKES, "confidence": 0.8, **kw}
    return Observation(user_id=user, evidence=evidence, aspect=aspect, value=value, **fields)


SEASICK = ("I get seasick easily, so ferries are miserable.", "travel by sea", "boats and ferries")
VEGAN = ("My kids are vegan.", "diet", "vegan food")
QUIET = ("I can't stand crowded places.", "atmosphere", "crowded places")


def test_relevant_observations_come_first(store: ObservationStore, embedder: Embedder) -> None:
    store.add_many([obs("a", *SEASICK, polarity=Polarity.AVOIDS), obs("a", *VEGAN), obs("a", *QUIET)])
    hits = Recaller(store).recall("a", "What should I cook for dinner tonight?")
    assert hits, "nothing recalled for a food question"
    assert hits[0].observation.aspect == "diet"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_only_pending_observations_are_recalled(store: ObservationStore, embedder: Embedder) -> None:
    carried = store.add(obs("a", *VEGAN))
    store.set_status("a", carried.id, Status.IN_WEIGHTS)
    store.add(obs("a", *VEGAN, status=Status.SUPERSEDED))
    assert Recaller(store).recall("a", "What should I cook tonight?") == []


def test_duplicates_are_collapsed(store: ObservationStore, embedder: Embedder) -> None:
    store.add_many([obs("a", *VEGAN), obs("a", *VEGAN), obs("a", VEGAN[0], "food", "plant-based meals")])
    hits = Recaller(store).recall("a", "Dinner ideas for my kids?")
    assert len(hits) == 1


def test_the_token_budget_is_respected(store: ObservationStore, embedder: Embedder) -> None:
    long_evidence = "I really love hiking in the mountains with my dog " * 5
    store.add_many([obs("a", *VEGAN), obs("a", long_evidence, "hobby", "mountain hiking")])
    roomy = Recaller(store, RecallConfig(token_budget=500, min_similarity=-1.0, relative_margin=2.0))
    assert len(roomy.recall("a", "Plans for the weekend?")) == 2
    tight = Recaller(store, RecallConfig(token_budget=20, min_similarity=-1.0, relative_margin=2.0))
    kept = tight.recall("a", "Plans for the weekend?")
    assert [h.observation.aspect for h in kept] == ["diet"]  # the long one does not fit, the short one does
    assert sum(len(format_memory_line(h.observation).split()) + 1 for h in kept) <= 20


def test_hits_far_below_the_best_are_dropped(store: ObservationStore, embedder: Embedder) -> None:
    store.add_many([obs("a", *SEASICK, polarity=Polarity.AVOIDS), obs("a", *VEGAN), obs("a", *QUIET)])
    question = "What should I cook for the family tonight?"
    loose = Recaller(store, RecallConfig(min_similarity=-1.0, relative_margin=2.0)).recall("a", question)
    strict = Recaller(store, RecallConfig(min_similarity=-1.0, relative_margin=0.15)).recall("a", question)
    assert len(loose) == 3
    assert [h.observation.aspect for h in strict] == ["diet"]


def test_recency_breaks_ties(store: ObservationStore, embedder: Embedder) -> None:
    old = obs("a", *VEGAN, created_at=time.time() - 365 * 86400)
    new = obs("a", VEGAN[0] + " ", "diet", "vegan food")
    store.add_many([old, new])
    recaller = Recaller(store, RecallConfig(duplicate_similarity=1.1))
    hits = recaller.recall("a", "Dinner ideas?")
    assert hits[0].observation.id == new.id


def test_unrelated_observations_stay_out(store: ObservationStore, embedder: Embedder) -> None:
    store.add(obs("a", "I prefer aisle seats on long flights.", "seating", "aisle seats"))
    assert Recaller(store).recall("a", "How do I reverse a linked list in Python?") == []


def test_other_users_are_never_recalled(store: ObservationStore, embedder: Embedder) -> None:
    store.add(obs("alice", *VEGAN))
    assert Recaller(store).recall("bob", "What should I cook tonight?") == []
