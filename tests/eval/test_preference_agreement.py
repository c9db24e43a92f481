"""Hand labels for the PrefEval judge: read strictly, fitted, cross-validated, disagreements listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.preference_agreement import load_pref_labels, preference_agreement_report
from eval.preference_judge import PreferenceJudge
from memory.embedder import Embedder
from memory.errors import InvalidInput

BASE = {
    "preference": "I refuse to use rental cars that are not electric or hybrid vehicles.",
    "target": "electric or hybrid",
    "aligned": "The Tesla Model 3 is an excellent electric vehicle for road trips.",
    "violating": [
        "The Ford F-150 pickup truck is a reliable and spacious option.",
        "The Jeep Wrangler is a rugged and capable off-road vehicle.",
    ],
    "question": "Which car should I rent for my road trip?",
}
ANSWERS = [
    ("Since you prefer electric or hybrid cars, a Prius is ideal.", True, False),
    ("Given your wish for an electric car, the Tesla Model 3 fits.", True, False),
    ("I recommend the Ford F-150 pickup truck: reliable and spacious.", False, True),
    ("A Jeep Wrangler is rugged and capable off-road.", False, True),
    ("Paris is the capital of France.", False, False),
    ("Road trips are fun with good music.", False, False),
]


def _write(path: Path) -> Path:
    lines = [json.dumps({**BASE, "answer": a, "acknowledged": ack, "violated": v}) for a, ack, v in ANSWERS]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_report_fits_and_cross_validates(tmp_path: Path, embedder: Embedder) -> None:
    items = load_pref_labels(_write(tmp_path / "labels.jsonl"))
    assert len(items) == 6 and items[2].violated and items[2].case.violating[0].startswith("The Ford")
    judge = PreferenceJudge(embedder, ack_threshold=0.99, violation_threshold=0.99)
    report = preference_agreement_report(judge, items, folds=3)
    assert report["labels"] == 6 and report["acknowledged_labels"] == 2 and report["violated_labels"] == 2
    assert report["fitted"]["ack_agreement"] == 1.0 and report["fitted"]["violation_agreement"] == 1.0
    assert report["before_fitting"]["violation_agreement"] == pytest.approx(4 / 6, abs=1e-3)
    assert 0.0 <= report["cross_validated"]["violation_agreement"] <= 1.0
    assert report["disagreements"] == [] and judge.violation_threshold < 0.99


def test_malformed_labels_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**BASE, "answer": "x", "acknowledged": "yes", "violated": False}) + "\n")
    with pytest.raises(InvalidInput, match="line 1"):
        load_pref_labels(bad)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InvalidInput, match="no labelled answers"):
        load_pref_labels(tmp_path / "empty.jsonl")


def test_default_thresholds_are_the_ones_fitted_on_the_committed_labels(embedder: Embedder) -> None:
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "prefeval_labels.jsonl"
    items = load_pref_labels(fixture)
    assert (
        len(items) >= 100
        and sum(i.acknowledged for i in items) >= 10
        and sum(i.violated for i in items) >= 10
    )
    report = preference_agreement_report(PreferenceJudge(embedder), items)
    before, fitted = report["before_fitting"], report["fitted"]
    assert before["ack_agreement"] == fitted["ack_agreement"] >= 0.94
    assert before["violation_agreement"] == fitted["violation_agreement"] >= 0.83
