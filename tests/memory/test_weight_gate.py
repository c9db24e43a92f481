"""The commit gate's bookkeeping: what it is shown, what a pass stores, what a rejection leaves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from memory.weights.delta import Delta
from memory.weights.gate import CommitRejected
from memory.weights.ledger import LedgerConflict
from memory.weights.weight_memory import WeightMemory
from tests.memory.test_weight_memory import PROVENANCE, _same, _Tiny, tiny_delta


@dataclass
class _Verdict:
    passed: bool
    reasons: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "reasons": self.reasons}


@dataclass
class _Gate:
    """Passes unless told otherwise, and remembers what each review was shown."""

    fail_next: bool = False
    seen: list[dict[str, Any]] = field(default_factory=list)
    during_review: Any = None

    def review(
        self,
        user_id: str,
        parent: Delta,
        candidate: Delta,
        earlier: Sequence[dict[str, Any]],
        new: Sequence[dict[str, Any]],
    ) -> _Verdict:
        self.seen.append(
            {"parent": parent, "candidate": candidate, "earlier": list(earlier), "new": list(new)}
        )
        if self.during_review is not None:
            self.during_review()
        if self.fail_next:
            return _Verdict(False, ["perplexity: rose 40%"])
        return _Verdict(True, [])


def test_the_gate_sees_the_whole_candidate_and_a_pass_is_stored(tmp_path: Path) -> None:
    gate = _Gate()
    wm = WeightMemory(tmp_path, _Tiny(), gate=gate)
    d1, d2 = tiny_delta(1), tiny_delta(2)
    wm.commit("u1", d1, **PROVENANCE)
    info = wm.commit("u1", d2, **PROVENANCE)
    assert info.drift == {"passed": True, "reasons": []}  # the verdict is the version's drift record
    second = gate.seen[1]
    assert _same(second["parent"], d1) and _same(second["candidate"], d1.stack(d2))  # whole memory
    assert second["earlier"] == PROVENANCE["requests"] and second["new"] == PROVENANCE["requests"]


def test_a_rejection_writes_nothing(tmp_path: Path) -> None:
    gate = _Gate()
    wm = WeightMemory(tmp_path, _Tiny(), gate=gate)
    wm.commit("u1", tiny_delta(1), **PROVENANCE)
    before = wm.delta("u1")
    gate.fail_next = True
    with pytest.raises(CommitRejected, match="perplexity: rose 40%") as rejected:
        wm.commit("u1", tiny_delta(2), **PROVENANCE)
    assert rejected.value.verdict.passed is False
    assert wm.head("u1") == 1 and len(wm.versions("u1")) == 1
    assert sorted(p.name for p in (tmp_path / "users" / "u1").iterdir()) == ["v0001.safetensors"]
    assert _same(wm.delta("u1"), before)


def test_a_head_moved_during_the_review_is_a_conflict(tmp_path: Path) -> None:
    gate = _Gate()
    wm = WeightMemory(tmp_path, _Tiny(), gate=gate)
    wm.commit("u1", tiny_delta(1), **PROVENANCE)
    gate.during_review = lambda: wm.revert("u1", 0)  # another writer moves the head meanwhile
    with pytest.raises(LedgerConflict):
        wm.commit("u1", tiny_delta(2), **PROVENANCE)
    assert wm.head("u1") == 0 and len(wm.versions("u1")) == 1


def test_earlier_requests_span_whole_versions(tmp_path: Path) -> None:
    """A whole version restarts the file chain, not the history the gate re-asks."""
    gate = _Gate()
    wm = WeightMemory(tmp_path, _Tiny(), gate=gate)
    first = {**PROVENANCE, "requests": [{"subject": "a"}]}
    second = {**PROVENANCE, "requests": [{"subject": "b"}]}
    wm.commit("u1", tiny_delta(1), **first)
    wm.commit("u1", tiny_delta(2), whole=True, **second)
    wm.commit("u1", tiny_delta(3), **PROVENANCE)
    assert gate.seen[-1]["earlier"] == [{"subject": "a"}, {"subject": "b"}]
