"""Did an answer acknowledge the user's preference, and did it violate it? A local judge, no service needed.

PrefEval asks an LLM these two questions. Offline, on two cores, the same questions are answered by
sentence embeddings (MiniLM) with thresholds fitted on hand-labelled answers (`calibrate`):

1. **acknowledged**: the answer names the preference's target (the `TargetJudge` word match), or one of its
   sentences is at least `ack_threshold` similar to the preference statement or the target;
2. **violated** (PrefEval's rule: recommending against the preference *without* acknowledging it): not
   acknowledged, and some sentence is at least `violation_threshold` similar to one of PrefEval's violating
   options for that preference and closer to it than to the aligned option.

The thresholds in use are reported with every result, as is their agreement with the hand labels.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from consolidation.judge import TargetJudge, TextEmbedder

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
MAX_SENTENCES = 12  # a long answer's tail rarely changes the verdict; bounding it bounds the cost

# fitted by `imprint eval prefeval-judge` on the 119 hand labels of tests/fixtures/prefeval_labels.jsonl:
# agreement 0.950 (acknowledgment) and 0.832 (violation), 0.941 and 0.824 cross-validated (docs/results.md)
DEFAULT_ACK_THRESHOLD = 0.607
DEFAULT_VIOLATION_THRESHOLD = 0.6359


@dataclass(frozen=True)
class PreferenceCase:
    """What the judge needs about the preference an answer is judged against."""

    preference: str
    target: str
    aligned: str | None = None
    violating: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreferenceVerdict:
    """A judged answer; the similarities are the local judge's evidence (None from an endpoint judge)."""

    acknowledged: bool
    violated: bool
    ack_similarity: float | None  # best sentence-to-preference similarity
    violation_similarity: float | None  # best sentence-to-violating-option similarity (0 without options)
    aligned_similarity: float | None


class PreferenceJudging(Protocol):
    """What the PrefEval run needs of a judge: this module's local one, or an endpoint's."""

    def judge(self, answer: str, case: PreferenceCase) -> PreferenceVerdict: ...

    def describe(self) -> str: ...


def sentences(text: str) -> list[str]:
    parts = [p.strip() for p in _SENTENCE.split(text.strip()) if len(p.strip()) > 3]
    return parts[:MAX_SENTENCES] or [text.strip() or " "]


class PreferenceJudge:
    """Acknowledgment and violation verdicts by the rule in the module docstring."""

    def __init__(
        self,
        embedder: TextEmbedder,
        ack_threshold: float = DEFAULT_ACK_THRESHOLD,
        violation_threshold: float = DEFAULT_VIOLATION_THRESHOLD,
    ) -> None:
        self.embedder = embedder
        self.ack_threshold = ack_threshold
        self.violation_threshold = violation_threshold

    def describe(self) -> str:
        return (
            f"PreferenceJudge (local MiniLM: acknowledged at similarity >= {self.ack_threshold} or the "
            f"target's words; violated at >= {self.violation_threshold} to a violating option)"
        )

    def similarities(self, answer: str, case: PreferenceCase) -> tuple[float, float, float]:
        """(to the preference or target, to the violating options, to the aligned option), best sentence."""
        sents = sentences(answer)
        anchors = [case.preference, case.target]
        options = [*case.violating, *([case.aligned] if case.aligned else [])]
        vecs = self.embedder.embed([*sents, *anchors, *options])
        s, a, o = vecs[: len(sents)], vecs[len(sents) : len(sents) + 2], vecs[len(sents) + 2 :]
        ack = float((s @ a.T).max())
        violating = o[: len(case.violating)]
        viol = float((s @ violating.T).max()) if len(violating) else 0.0
        aligned = float((s @ o[len(case.violating) :].T).max()) if case.aligned else 0.0
        return ack, viol, aligned

    def judge(self, answer: str, case: PreferenceCase) -> PreferenceVerdict:
        ack_sim, viol_sim, aligned_sim = self.similarities(answer, case)
        return self.verdict(answer, case, ack_sim, viol_sim, aligned_sim)

    def verdict(
        self, answer: str, case: PreferenceCase, ack_sim: float, viol_sim: float, aligned_sim: float
    ) -> PreferenceVerdict:
        """The verdict from precomputed similarities (calibration re-thresholds without re-embedding)."""
        acknowledged = TargetJudge.normalized_match(answer, [case.target]) or ack_sim >= self.ack_threshold
        violated = (
            not acknowledged
            and bool(case.violating)
            and viol_sim >= self.violation_threshold
            and viol_sim > aligned_sim
        )
        return PreferenceVerdict(acknowledged, violated, ack_sim, viol_sim, aligned_sim)


def _best(candidates: Sequence[float], agree: Callable[[float], float]) -> tuple[float, float]:
    """The candidate threshold with the highest agreement (1.01: "similarity never decides")."""
    best_t, best_acc = 1.01, -1.0
    for t in sorted({*candidates, 1.01}):  # the observed values themselves: exact for the labelled set
        acc = agree(t)
        if acc > best_acc:
            best_t, best_acc = t, acc
    return best_t, best_acc


def calibrate(
    judge: PreferenceJudge,
    answers: Sequence[str],
    cases: Sequence[PreferenceCase],
    ack_labels: Sequence[bool],
    violation_labels: Sequence[bool],
) -> dict[str, float]:
    """Fit both thresholds to hand labels (acknowledgment first: violation depends on it); returns them
    with each verdict's agreement. The judge is left holding the fitted thresholds."""
    sims = [judge.similarities(a, c) for a, c in zip(answers, cases, strict=True)]
    ack_gold = np.asarray(ack_labels, dtype=bool)
    viol_gold = np.asarray(violation_labels, dtype=bool)

    def ack_agreement(t: float) -> float:
        judge.ack_threshold = t
        got = [judge.verdict(a, c, *s).acknowledged for a, c, s in zip(answers, cases, sims, strict=True)]
        return float((np.asarray(got) == ack_gold).mean())

    judge.ack_threshold, ack_acc = _best([s[0] for s in sims], ack_agreement)

    def viol_agreement(t: float) -> float:
        judge.violation_threshold = t
        got = [judge.verdict(a, c, *s).violated for a, c, s in zip(answers, cases, sims, strict=True)]
        return float((np.asarray(got) == viol_gold).mean())

    judge.violation_threshold, viol_acc = _best([s[1] for s in sims], viol_agreement)
    return {
        "ack_threshold": judge.ack_threshold,
        "ack_agreement": ack_acc,
        "violation_threshold": judge.violation_threshold,
        "violation_agreement": viol_acc,
        "n": float(len(answers)),
    }
