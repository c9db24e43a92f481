"""What the weight memory asks before it commits a version: a gate that reviews the candidate memory.

Defined here, implemented elsewhere (`consolidation.drift.DriftGate`), so imports keep flowing one way
(consolidation → memory) while the memory alone enforces "no version without a passing check".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from memory.errors import MemoryError_
from memory.weights.delta import Delta


class Verdict(Protocol):
    """A gate's answer: stored with the committed version (the ledger's `drift` column)."""

    @property
    def passed(self) -> bool: ...

    @property
    def reasons(self) -> list[str]: ...

    def to_dict(self) -> dict[str, Any]: ...


class CommitGate(Protocol):
    """Reviews a user's whole candidate memory against the one in force."""

    def review(
        self,
        user_id: str,
        parent: Delta,
        candidate: Delta,
        earlier: Sequence[dict[str, Any]],
        new: Sequence[dict[str, Any]],
    ) -> Verdict:
        """`earlier`: the requests of the versions in force (their provenance dicts), oldest first; `new`:
        this commit's requests."""
        ...


class CommitRejected(MemoryError_):
    """The gate failed the candidate: nothing was written and the user's memory stays as it was."""

    def __init__(self, user_id: str, verdict: Verdict) -> None:
        self.user_id, self.verdict = user_id, verdict
        super().__init__(f"user {user_id!r}: candidate memory rejected: " + "; ".join(verdict.reasons))
