"""How often the target judge agrees with a person, and which embedding threshold makes it agree most.

Input: JSON lines of hand-labelled answers, `{"question", "answer", "targets": [...], "label": true|false}`
(optionally `"source"`, where the answer came from). The threshold is fitted on all labels
(`consolidation.judge.calibrate`); because a threshold fitted and scored on the same items flatters itself,
the report also gives k-fold cross-validated agreement (each fold scored with the threshold fitted on the
others), and the agreement of the match rule alone, so the embedding's contribution is visible.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consolidation.judge import TargetJudge, best_threshold
from memory.errors import InvalidInput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelledAnswer:
    """One answer and whether a person judged that it states (one of) the targets."""

    question: str
    answer: str
    targets: tuple[str, ...]
    label: bool
    source: str = ""


def load_labels(path: Path) -> list[LabelledAnswer]:
    """Read a labels file; a malformed line is an error naming its line number."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise InvalidInput(f"cannot read labels from {path}: {exc}") from exc
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            targets = raw["targets"]
            if not isinstance(raw["label"], bool) or not isinstance(targets, list) or not targets:
                raise ValueError("label must be true/false and targets a non-empty list")
            items.append(
                LabelledAnswer(
                    question=str(raw["question"]),
                    answer=str(raw["answer"]),
                    targets=tuple(str(t) for t in targets),
                    label=raw["label"],
                    source=str(raw.get("source", "")),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"{path} line {number}: {exc}") from exc
    if not items:
        raise InvalidInput(f"{path} holds no labelled answers")
    return items


def _agreement(verdicts: Sequence[bool], items: Sequence[LabelledAnswer]) -> float:
    return sum(v == i.label for v, i in zip(verdicts, items, strict=True)) / len(items)


@dataclass(frozen=True)
class _Scored:
    """What the judge sees of each item, computed once: embedding similarity and the word match."""

    similarities: list[float]
    matched: list[bool]
    labels: list[bool]

    def subset(self, rows: Sequence[int]) -> _Scored:
        return _Scored(
            [self.similarities[r] for r in rows],
            [self.matched[r] for r in rows],
            [self.labels[r] for r in rows],
        )

    def verdicts(self, threshold: float) -> list[bool]:
        return [m or s >= threshold for s, m in zip(self.similarities, self.matched, strict=True)]

    def fit(self) -> float:
        return best_threshold(self.similarities, self.matched, self.labels)[0]


def _score(judge: TargetJudge, items: Sequence[LabelledAnswer]) -> _Scored:
    return _Scored(
        judge.similarities([i.answer for i in items], [i.targets for i in items]),
        [judge.normalized_match(i.answer, i.targets) for i in items],
        [i.label for i in items],
    )


def cross_validated(scored: _Scored, folds: int, seed: int) -> float:
    """Agreement when each fold is judged with the threshold fitted on the other folds."""
    order = list(range(len(scored.labels)))
    random.Random(seed).shuffle(order)
    hits = 0
    for f in range(folds):
        held = scored.subset(order[f::folds])
        rest = scored.subset([i for n, i in enumerate(order) if n % folds != f])
        if not held.labels or not rest.labels:
            continue
        hits += sum(v == g for v, g in zip(held.verdicts(rest.fit()), held.labels, strict=True))
    return hits / len(order)


def agreement_report(
    judge: TargetJudge, items: Sequence[LabelledAnswer], folds: int = 5, seed: int = 0
) -> dict[str, Any]:
    """Fitted threshold, its agreement, cross-validated agreement, baselines, and the disagreements."""
    scored = _score(judge, items)
    threshold = scored.fit()
    verdicts = scored.verdicts(threshold)
    counts = {
        "true_positive": sum(v and i.label for v, i in zip(verdicts, items, strict=True)),
        "false_positive": sum(v and not i.label for v, i in zip(verdicts, items, strict=True)),
        "false_negative": sum(not v and i.label for v, i in zip(verdicts, items, strict=True)),
        "true_negative": sum(not v and not i.label for v, i in zip(verdicts, items, strict=True)),
    }
    report = {
        "labels": len(items),
        "positive_labels": sum(i.label for i in items),
        "threshold": round(threshold, 4),
        "agreement": round(_agreement(verdicts, items), 4),
        "agreement_cross_validated": round(cross_validated(scored, folds, seed), 4),
        "folds": folds,
        "agreement_match_only": round(_agreement(scored.matched, items), 4),
        "agreement_at_default": round(_agreement(scored.verdicts(judge.threshold), items), 4),
        "default_threshold": judge.threshold,
        **counts,
        "disagreements": [
            {"answer": i.answer, "targets": list(i.targets), "label": i.label, "source": i.source}
            for v, i in zip(verdicts, items, strict=True)
            if v != i.label
        ],
    }
    log.info(
        "judge: threshold %.3f agrees with %d labels at %.3f (cross-validated %.3f, match only %.3f)",
        threshold,
        len(items),
        report["agreement"],
        report["agreement_cross_validated"],
        report["agreement_match_only"],
    )
    return report
