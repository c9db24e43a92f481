"""Choose which of a user's observations go into the prompt for one message.

Why this shape: the prompt of a small model is precious, so recall is a ranking under a token budget:
similarity to the message, boosted by confidence and recency; only observations still in retrieval
(`pending`: those carried by weights are already in the model); near-duplicates collapsed so the same
preference never costs tokens twice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from memory.observations import Hit, Observation, Status


class SearchableStore(Protocol):
    """The part of the observation store recall needs."""

    def nearest(self, user_id: str, query: str, k: int = 5, status: Status | None = None) -> list[Hit]: ...


@dataclass(frozen=True)
class RecallConfig:
    k: int = 6  # candidates fetched by similarity before dedup and budget
    token_budget: int = 200  # prompt tokens allowed for memory
    min_similarity: float = 0.1  # unrelated below this; MiniLM scores implicit links at 0.1-0.3
    half_life_days: float = 30.0  # an observation's recency weight halves every this many days
    relative_margin: float = 0.15  # drop hits this far below the best one: on-topic beats merely related
    duplicate_similarity: float = 0.9  # two observations this close say the same thing
    recency_weight: float = 0.1  # how much recency can lift a score (similarity dominates)
    confidence_weight: float = 0.1


@dataclass(frozen=True)
class Recalled:
    """An observation chosen for the prompt, with the score that chose it."""

    observation: Observation
    similarity: float
    score: float


class Recaller:
    """Ranks a user's pending observations for a message, within a token budget."""

    def __init__(self, store: SearchableStore, config: RecallConfig | None = None) -> None:
        self.store = store
        self.config = config or RecallConfig()

    def _score(self, obs: Observation, similarity: float, now: float) -> float:
        cfg = self.config
        age_days = max(0.0, now - obs.created_at) / 86400.0
        recency = math.exp(-math.log(2) * age_days / cfg.half_life_days)
        return similarity + cfg.recency_weight * recency + cfg.confidence_weight * obs.confidence

    def recall(
        self, user_id: str, message: str, count_tokens: Callable[[str], int] | None = None
    ) -> list[Recalled]:
        """Observations of `user_id` relevant to `message`, best first, fitting the token budget."""
        cfg = self.config
        hits = self.store.nearest(user_id, message, k=cfg.k, status=Status.PENDING)
        now = time.time()
        scored = sorted(
            (
                (
                    Recalled(h.observation, h.similarity, self._score(h.observation, h.similarity, now)),
                    h.vector,
                )
                for h in hits
                if h.similarity >= cfg.min_similarity
            ),
            key=lambda pair: pair[0].score,
            reverse=True,
        )
        if scored:
            best = max(r.similarity for r, _ in scored)
            scored = [(r, v) for r, v in scored if r.similarity >= best - cfg.relative_margin]
        chosen = self._dedupe(scored)
        return self._fit_budget(chosen, count_tokens or (lambda t: len(t.split())))

    def _dedupe(self, scored: list[tuple[Recalled, np.ndarray]]) -> list[Recalled]:
        """Drop hits that say what a better one says: the same sentence, or stored embeddings (of summary and
        evidence) closer than `duplicate_similarity`. The stored vectors are reused, so a recall embeds only
        the message."""
        kept: list[tuple[Recalled, np.ndarray]] = []
        seen_evidence: set[str] = set()
        for recalled, vector in scored:
            evidence = recalled.observation.evidence.strip().lower()
            if evidence in seen_evidence:
                continue  # two observations from one sentence: the prompt quotes the sentence once
            seen_evidence.add(evidence)
            if all(float(np.dot(vector, v)) < self.config.duplicate_similarity for _, v in kept):
                kept.append((recalled, vector))
        return [r for r, _ in kept]

    def _fit_budget(self, chosen: list[Recalled], count_tokens: Callable[[str], int]) -> list[Recalled]:
        out: list[Recalled] = []
        used = 0
        for r in chosen:
            cost = count_tokens(format_memory_line(r.observation)) + 1
            if used + cost > self.config.token_budget:
                continue  # a shorter, lower-ranked observation may still fit
            out.append(r)
            used += cost
        return out


def format_memory_line(obs: Observation) -> str:
    """How one observation reads in the system prompt: the user's own words, quoted.

    Why not "aspect: value": on the 135M default model, quoting what the user said was the form its answers
    followed most often in a side-by-side try of four prompt forms (system list, quoted words, user-turn
    prefix, fake earlier turn); the structured summary is kept for display and clustering.
    """
    return memory_line(obs.evidence)


def memory_line(words: str) -> str:
    """`words` as a recalled line reads (`format_memory_line`): quoted, whitespace collapsed."""
    return '"' + " ".join(words.split()) + '"'
