"""How often the PrefEval judge agrees with a person on acknowledgment and violation, at fitted thresholds.

Input: JSON lines of hand-labelled PrefEval answers, `{"preference", "target", "aligned", "violating": [...],
"question", "answer", "acknowledged": bool, "violated": bool, "source"}`. Both thresholds are fitted on all
labels (`eval.preference_judge.calibrate`), and k-fold cross-validated agreement (each fold judged with
thresholds fitted on the others) says how much of that agreement is the fit flattering itself.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.preference_judge import PreferenceCase, PreferenceJudge, calibrate
from memory.errors import InvalidInput


@dataclass(frozen=True)
class LabelledPrefAnswer:
    case: PreferenceCase
    question: str
    answer: str
    acknowledged: bool
    violated: bool
    source: str = ""


def load_pref_labels(path: Path) -> list[LabelledPrefAnswer]:
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
            if not isinstance(raw["acknowledged"], bool) or not isinstance(raw["violated"], bool):
                raise ValueError("acknowledged and violated must be true/false")
            case = PreferenceCase(
                str(raw["preference"]),
                str(raw["target"]),
                raw.get("aligned"),
                tuple(str(v) for v in raw.get("violating") or ()),
            )
            items.append(
                LabelledPrefAnswer(
                    case=case,
                    question=str(raw["question"]),
                    answer=str(raw["answer"]),
                    acknowledged=raw["acknowledged"],
                    violated=raw["violated"],
                    source=str(raw.get("source", "")),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"{path} line {number}: {exc}") from exc
    if not items:
        raise InvalidInput(f"{path} holds no labelled answers")
    return items


def _fit(judge: PreferenceJudge, items: Sequence[LabelledPrefAnswer]) -> dict[str, float]:
    return calibrate(
        judge,
        [i.answer for i in items],
        [i.case for i in items],
        [i.acknowledged for i in items],
        [i.violated for i in items],
    )


def preference_agreement_report(
    judge: PreferenceJudge, items: Sequence[LabelledPrefAnswer], folds: int = 5, seed: int = 0
) -> dict[str, Any]:
    """Agreement at the judge's current thresholds, the fitted thresholds with their agreement, k-fold
    cross-validated agreement, and every disagreement. The judge keeps the fitted thresholds."""
    at_default = [judge.judge(i.answer, i.case) for i in items]
    default = {
        "ack_threshold": judge.ack_threshold,
        "violation_threshold": judge.violation_threshold,
        "ack_agreement": _share(
            v.acknowledged == i.acknowledged for v, i in zip(at_default, items, strict=True)
        ),
        "violation_agreement": _share(
            v.violated == i.violated for v, i in zip(at_default, items, strict=True)
        ),
    }
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    ack_hits = viol_hits = 0
    for f in range(folds):
        held = [items[i] for i in order[f::folds]]
        rest = [items[i] for n, i in enumerate(order) if n % folds != f]
        if not held or not rest:
            continue
        fold_judge = PreferenceJudge(judge.embedder)
        _fit(fold_judge, rest)
        verdicts = [fold_judge.judge(i.answer, i.case) for i in held]
        ack_hits += sum(v.acknowledged == i.acknowledged for v, i in zip(verdicts, held, strict=True))
        viol_hits += sum(v.violated == i.violated for v, i in zip(verdicts, held, strict=True))
    fitted = _fit(judge, items)
    verdicts = [judge.judge(i.answer, i.case) for i in items]
    return {
        "labels": len(items),
        "acknowledged_labels": sum(i.acknowledged for i in items),
        "violated_labels": sum(i.violated for i in items),
        "fitted": {k: round(v, 4) for k, v in fitted.items()},
        "cross_validated": {
            "ack_agreement": round(ack_hits / len(items), 4),
            "violation_agreement": round(viol_hits / len(items), 4),
            "folds": folds,
        },
        "before_fitting": {k: round(float(v), 4) for k, v in default.items()},
        "disagreements": [
            {
                "answer": i.answer,
                "preference": i.case.preference,
                "label": {"acknowledged": i.acknowledged, "violated": i.violated},
                "judge": {"acknowledged": v.acknowledged, "violated": v.violated},
                "source": i.source,
            }
            for v, i in zip(verdicts, items, strict=True)
            if (v.acknowledged, v.violated) != (i.acknowledged, i.violated)
        ],
    }


def _share(flags: Any) -> float:
    values = list(flags)
    return sum(values) / len(values) if values else 0.0
