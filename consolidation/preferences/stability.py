"""When a candidate preference is stable enough to move into the weights.

Why these rules: a weight edit is expensive to make and to undo, and an edit on one passing remark would put
noise into every later answer. A preference earns an edit by recurring (support from several observations
in several conversations), or by one strong explicit statement; it must not be contested by a newer
contradicting position, and it must have been around for a minimum age, so a remark made and retracted
within one session never reaches the weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from consolidation.preferences.clusters import Preference


@dataclass(frozen=True)
class StabilityConfig:
    """Promotion thresholds; the defaults follow the consolidation issue."""

    min_support: int = 2  # observations of the current position
    min_threads: int = 2  # distinct conversations they came from
    explicit_confidence: float = 0.8  # one explicit statement at least this confident is enough
    min_age_seconds: float = 0.0  # since the current position was first seen

    def __post_init__(self) -> None:
        if self.min_support < 1 or self.min_threads < 0:
            raise ValueError("StabilityConfig needs min_support ≥ 1 and min_threads ≥ 0")
        if not 0.0 <= self.explicit_confidence <= 1.0:
            raise ValueError("StabilityConfig.explicit_confidence is a probability in [0, 1]")
        if self.min_age_seconds < 0:
            raise ValueError("StabilityConfig.min_age_seconds cannot be negative")


@dataclass(frozen=True)
class Verdict:
    stable: bool
    reason: str  # why it is (or is not) stable, for the run record


def assess(pref: Preference, config: StabilityConfig, now: float | None = None) -> Verdict:
    """Whether `pref` may be promoted to the weights now, and why."""
    now = time.time() if now is None else now
    if pref.contested:
        return Verdict(False, f"contested by {len(pref.contested_by)} newer contradicting observation(s)")
    age = now - pref.first_seen
    if age < config.min_age_seconds:
        return Verdict(False, f"first seen {age:.0f} s ago, younger than {config.min_age_seconds:.0f} s")
    support, threads = len(pref.support), len(pref.threads)
    if support >= config.min_support and threads >= config.min_threads:
        return Verdict(True, f"{support} observations from {threads} conversations")
    if pref.explicit and pref.confidence >= config.explicit_confidence:
        return Verdict(True, f"explicit statement, confidence {pref.confidence:.2f}")
    return Verdict(
        False,
        f"{support} observation(s) from {threads} conversation(s); needs {config.min_support} from "
        f"{config.min_threads}, or one explicit statement with confidence ≥ {config.explicit_confidence:g}",
    )
