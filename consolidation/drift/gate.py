"""`DriftGate`: the drift guard as the weight memory's commit gate (`memory.weights.gate.CommitGate`).

The memory hands over the requests of the versions in force; those still live (not about a subject the new
commit changes) become the retention probes, so a commit that makes the user's model forget earlier
preferences is rejected like one that damages general ability.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from consolidation.drift.guard import DriftGuard
from consolidation.drift.report import DriftReport
from consolidation.editors.base import subject_key
from consolidation.metrics import ProbeItem
from memory.weights.delta import Delta


def retention_items(earlier: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]) -> list[ProbeItem]:
    """The latest earlier request per subject that has a question and a target, except subjects `new`
    changes (their old value is meant to go)."""
    changed = {subject_key(str(r["subject"])) for r in new if r.get("subject")}
    latest: dict[str, ProbeItem] = {}
    for r in earlier:
        question, target, subject = r.get("question"), r.get("target"), r.get("subject")
        if not (question and target and subject) or subject_key(str(subject)) in changed:
            continue
        targets = tuple(r.get("targets") or (target,))
        latest[subject_key(str(subject))] = ProbeItem(
            question=str(question), targets=tuple(map(str, targets))
        )
    return list(latest.values())


class DriftGate:
    """Reviews a commit with a `DriftGuard`; its `DriftReport` is the verdict the ledger stores."""

    def __init__(self, guard: DriftGuard) -> None:
        self.guard = guard
        self.passed = 0  # reviews since start-up, for the service's /metrics
        self.failed = 0
        self.last: DriftReport | None = None

    def review(
        self,
        user_id: str,
        parent: Delta,
        candidate: Delta,
        earlier: Sequence[dict[str, Any]],
        new: Sequence[dict[str, Any]],
    ) -> DriftReport:
        report = self.guard.check(candidate, parent, retention_items(earlier, new))
        self.last = report
        if report.passed:
            self.passed += 1
        else:
            self.failed += 1
        return report
