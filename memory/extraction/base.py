"""The extractor contract: user text in, preference candidates out.

Why a protocol plus a batch helper: the agent calls `extract` once per turn, while evaluation and backfills
process thousands of turns and must embed them in batches; implementations that can batch override
`extract_many`, others inherit the per-text loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from memory.observations import Candidate


class Extractor(ABC):
    """Finds the preferences a user reveals in one turn of their own text."""

    @abstractmethod
    def extract(self, text: str) -> list[Candidate]:
        """Candidates found in `text` (one user turn); an empty list when it reveals nothing."""

    def extract_many(self, texts: Sequence[str]) -> list[list[Candidate]]:
        """`extract` applied to each text; override to share work (embedding) across texts."""
        return [self.extract(t) for t in texts]
