"""The observation record: one preference a user revealed, with where it came from and what became of it."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Lifecycle of an observation: retrieval first, weights once consolidated."""

    PENDING = "pending"  # in retrieval memory, recalled into prompts
    IN_WEIGHTS = "in_weights"  # carried by the user's weight delta; no longer recalled
    SUPERSEDED = "superseded"  # contradicted by a newer observation on the same aspect
    REJECTED = "rejected"  # a consolidation tried and the drift guard refused; kept for audit


class Polarity(StrEnum):
    """How the user stands to the value: drawn to it, steering clear of it, or simply being it.

    Why a third stance: much of what a user reveals is who they are rather than what they like ("I work as
    a nurse", "I grew up in Ohio", "I have two sons"). Those facts answer "what's my job?" as directly as a
    taste answers "what do I prefer?", and forcing them into likes/avoids would misstate them.
    """

    LIKES = "likes"
    AVOIDS = "avoids"
    IS = "is"

    @property
    def verb(self) -> str:
        """How the stance reads in a one-line summary: "diet: avoids meat", "job: is a nurse"."""
        return self.value


@dataclass(frozen=True)
class Candidate:
    """What the extractor finds in a user turn, before it is stored for a particular user."""

    evidence: str  # the user's own sentence
    aspect: str  # what it is about, e.g. "hotel atmosphere"
    value: str  # e.g. "quiet, no nightlife"
    polarity: Polarity
    confidence: float  # 0..1; explicit statements score higher than hints
    explicit: bool = False  # "I prefer X" rather than "I get seasick easily, so..."

    def summary(self) -> str:
        """One line used in prompts and for embedding: how the preference reads to the model."""
        return f"{self.aspect}: {self.polarity.verb} {self.value}"


@dataclass
class Observation:
    """A stored observation of one user's preference."""

    user_id: str
    evidence: str
    aspect: str
    value: str
    polarity: Polarity
    confidence: float
    thread_id: str = ""
    turn: int = -1
    explicit: bool = False
    status: Status = Status.PENDING
    created_at: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def from_candidate(
        cls, user_id: str, cand: Candidate, thread_id: str = "", turn: int = -1
    ) -> Observation:
        return cls(
            user_id=user_id,
            evidence=cand.evidence,
            aspect=cand.aspect,
            value=cand.value,
            polarity=cand.polarity,
            confidence=cand.confidence,
            explicit=cand.explicit,
            thread_id=thread_id,
            turn=turn,
        )

    def summary(self) -> str:
        return f"{self.aspect}: {self.polarity.verb} {self.value}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["polarity"] = self.polarity.value
        d["status"] = self.status.value
        return d


@dataclass(frozen=True)
class Hit:
    """An observation found by similarity: its cosine similarity to the query and its stored unit vector.

    Why the vector travels with it: recall compares hits with each other to drop near-duplicates, and the
    stored embedding serves for that without embedding their texts again on every turn.
    """

    observation: Observation
    similarity: float
    vector: Any = field(repr=False, compare=False)  # numpy float32 array, shape (dim,), unit norm
