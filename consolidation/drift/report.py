"""`DriftReport`: each drift metric of a candidate memory, its change against the base model, the verdict.

Stored with each committed version (the ledger's `drift` column) and returned with each rejection, so the
reasons a memory was or was not committed stay readable later.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Check:
    """One metric: its base and candidate values, the rule it is held to, and whether it passed."""

    name: str  # e.g. "boolq_accuracy"
    candidate: float
    base: float | None  # None where there is no base value (norm growth, retention)
    rule: str  # the rule in words, e.g. "change ≥ −0.01 at 99% (paired bootstrap)"
    passed: bool
    reason: str = ""  # why it failed, in words; "" when it passed
    detail: dict[str, float] = field(default_factory=dict)  # bounds, counts

    @property
    def change(self) -> float | None:
        return None if self.base is None else self.candidate - self.base


@dataclass(frozen=True)
class DriftReport:
    """The verdict on one candidate memory: it passes only if every check passes."""

    checks: list[Check]
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        return [f"{c.name}: {c.reason}" for c in self.checks if not c.passed]

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check named {name!r}; have {[c.name for c in self.checks]}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": self.reasons,
            "seconds": round(self.seconds, 2),
            "checks": [{**asdict(c), "change": c.change} for c in self.checks],
            "settings": self.settings,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        checks = [Check(**{k: v for k, v in c.items() if k != "change"}) for c in data["checks"]]
        return cls(checks=checks, seconds=float(data["seconds"]), settings=dict(data.get("settings", {})))

    def table(self) -> str:
        """A markdown table, one row per check (what `imprint drift` prints)."""
        rows = ["| check | base | candidate | change | rule | verdict |", "|---|---|---|---|---|---|"]
        for c in self.checks:
            base = "" if c.base is None else f"{c.base:.4f}"
            change = "" if c.change is None else f"{c.change:+.4f}"
            verdict = "pass" if c.passed else f"FAIL: {c.reason}"
            rows.append(f"| {c.name} | {base} | {c.candidate:.4f} | {change} | {c.rule} | {verdict} |")
        rows.append(f"\n{'PASSED' if self.passed else 'FAILED'} in {self.seconds:.1f} s")
        return "\n".join(rows)
