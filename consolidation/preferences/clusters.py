"""From a user's observations to candidate preferences: one per aspect, with its phrasings, support and
the position (value and polarity) that currently holds.

Why embeddings of the aspect and not its string: the extractor phrases one aspect several ways across
sessions ("diet", "food", "what I eat"); single-linkage on aspect embeddings joins them. Inside an aspect,
observations that agree (same polarity, similar value) form a *position*; two positions of one aspect
contradict each other, and the newest position supersedes the older ones when it is at least as well
supported or stated explicitly ("I've gone vegetarian" beats three steak dinners). A newer position that is
weaker than the one it contradicts is an unresolved contradiction: nothing of that aspect is promoted until
the user settles it.

An aspect holds one value at a time, as a UPQA attribute does ("favourite hobby" → one target): that is
what a weight edit can state as one answer. A user who likes jazz and later says rock shows up as rock
superseding jazz once rock is as well supported; finer aspects ("music for work", "concerts") keep both.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from memory.embedder import Embedder
from memory.observations import Observation, Polarity, Status


@dataclass(frozen=True)
class ClusterConfig:
    """Similarity thresholds (cosine of all-MiniLM-L6-v2 unit vectors)."""

    # aspects this close are one subject: joins "music"~"music preference" (0.68), "pet"~"pets" (0.84)
    # and keeps the extractor's own labels apart (the closest two, "accommodation"~"hotel atmosphere": 0.54)
    aspect_similarity: float = 0.65
    value_similarity: float = 0.55  # same polarity, values this close agree ("steak"~"grilled steak" 0.83,
    # "steak"~"vegetarian food" 0.46: two positions, and an aspect holds one at a time)

    def __post_init__(self) -> None:
        for name in ("aspect_similarity", "value_similarity"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"ClusterConfig.{name} is a cosine similarity in [-1, 1]")


@dataclass(frozen=True)
class Position:
    """Observations of one aspect that agree: the same polarity and similar values."""

    polarity: Polarity
    observations: tuple[Observation, ...]  # oldest first

    @property
    def values(self) -> tuple[str, ...]:
        """Distinct value phrasings, most frequent first (ties: newest first)."""
        return _ranked([o.value for o in self.observations])

    @property
    def newest(self) -> float:
        return self.observations[-1].created_at

    @property
    def explicit(self) -> bool:
        return any(o.explicit for o in self.observations)


@dataclass(frozen=True)
class Preference:
    """A candidate preference: the current position of one aspect, with what it superseded."""

    user_id: str
    subjects: tuple[str, ...]  # the aspect's phrasings, most frequent first (subject cluster)
    targets: tuple[str, ...]  # the current position's value phrasings (target cluster)
    polarity: Polarity
    support: tuple[str, ...]  # ids of the current position's observations
    threads: frozenset[str]
    first_seen: float
    last_seen: float
    confidence: float  # noisy-or of the supporting observations' confidences
    explicit: bool
    superseded: tuple[str, ...]  # ids of older, contradicted observations of the aspect
    contested_by: tuple[str, ...]  # ids of a newer but weaker contradicting position (unresolved)
    in_weights: tuple[str, ...]  # ids of supporting observations already consolidated

    @property
    def aspect(self) -> str:
        return self.subjects[0]

    @property
    def value(self) -> str:
        return self.targets[0]

    @property
    def contested(self) -> bool:
        return bool(self.contested_by)

    def summary(self) -> str:
        return f"{self.aspect}: {self.polarity.verb} {self.value}"


def _ranked(phrases: Sequence[str]) -> tuple[str, ...]:
    """Distinct phrases by frequency, ties broken by recency (later in `phrases` first)."""
    counts = Counter(p.strip() for p in phrases if p.strip())
    last = {p.strip(): i for i, p in enumerate(phrases)}
    return tuple(sorted(counts, key=lambda p: (-counts[p], -last[p])))


def _single_linkage(vectors: np.ndarray, threshold: float) -> list[int]:
    """Group label per row: rows joined whenever any pair across groups is at least `threshold` similar."""
    n = len(vectors)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n:
        sims = vectors @ vectors.T  # (n, n) cosines of unit vectors
        for i, j in zip(*np.nonzero(np.triu(sims >= threshold, k=1)), strict=True):
            parent[find(int(i))] = find(int(j))
    roots = [find(i) for i in range(n)]
    first: dict[int, int] = {}
    return [first.setdefault(r, len(first)) for r in roots]


def _positions(observations: Sequence[Observation], vectors: np.ndarray, threshold: float) -> list[Position]:
    """Agreeing groups of one aspect's observations (oldest first), ordered by their newest observation."""
    out: list[Position] = []
    for polarity in Polarity:
        idx = [i for i, o in enumerate(observations) if o.polarity is polarity]
        labels = _single_linkage(vectors[idx], threshold) if idx else []
        for label in sorted(set(labels)):
            members = [observations[idx[k]] for k, lab in enumerate(labels) if lab == label]
            out.append(Position(polarity, tuple(sorted(members, key=lambda o: o.created_at))))
    return sorted(out, key=lambda p: p.newest)


def _confidence(observations: Sequence[Observation]) -> float:
    miss = 1.0
    for o in observations:
        miss *= 1.0 - min(max(o.confidence, 0.0), 1.0)
    return 1.0 - miss


def cluster_preferences(
    observations: Sequence[Observation], embedder: Embedder, config: ClusterConfig | None = None
) -> list[Preference]:
    """The candidate preferences among one user's live observations (pending or in weights), newest last.

    Superseded and rejected observations take no part: they have already lost, or are kept only for audit.
    """
    config = config or ClusterConfig()
    live = sorted(
        (o for o in observations if o.status in (Status.PENDING, Status.IN_WEIGHTS)),
        key=lambda o: o.created_at,
    )
    if not live:
        return []
    users = {o.user_id for o in live}
    if len(users) != 1:
        raise ValueError(f"cluster_preferences takes one user's observations, got users {sorted(users)}")
    aspects = embedder.embed([o.aspect for o in live])
    values = embedder.embed([o.value for o in live])
    out: list[Preference] = []
    labels = _single_linkage(aspects, config.aspect_similarity)
    for label in sorted(set(labels)):
        rows = [i for i, lab in enumerate(labels) if lab == label]
        members = [live[i] for i in rows]
        positions = _positions(members, values[rows], config.value_similarity)
        out.append(_preference(members, positions))
    return sorted(out, key=lambda p: p.last_seen)


def _preference(members: Sequence[Observation], positions: Sequence[Position]) -> Preference:
    """The current position of one aspect: the newest that is explicit or at least as supported as every
    older one it contradicts; a newer, weaker position leaves the aspect contested."""
    current = len(positions) - 1
    contested: list[Observation] = []
    while current > 0:
        newest, older = positions[current], positions[:current]
        strongest = max(len(p.observations) for p in older)
        if newest.explicit or len(newest.observations) >= strongest:
            break
        contested.extend(newest.observations)
        current -= 1
    # a contested newest position leaves the one it challenges in force, but not stable
    held = positions[current]
    superseded = [o.id for p in positions[:current] for o in p.observations]
    user_id = members[0].user_id
    return Preference(
        user_id=user_id,
        subjects=_ranked([o.aspect for o in members]),
        targets=held.values,
        polarity=held.polarity,
        support=tuple(o.id for o in held.observations),
        threads=frozenset(o.thread_id for o in held.observations if o.thread_id),
        first_seen=held.observations[0].created_at,
        last_seen=held.newest,
        confidence=_confidence(held.observations),
        explicit=held.explicit,
        superseded=tuple(superseded),
        contested_by=tuple(o.id for o in contested),
        in_weights=tuple(o.id for o in held.observations if o.status is Status.IN_WEIGHTS),
    )
