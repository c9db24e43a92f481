"""The judge against hand labels: the labels file, the fitted threshold, and the committed agreement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consolidation.judge import DEFAULT_THRESHOLD, TargetJudge
from eval.judge_agreement import LabelledAnswer, agreement_report, load_labels
from memory.embedder import Embedder
from memory.errors import InvalidInput
from tests.api.test_cli import imprint

LABELS = Path(__file__).parents[1] / "fixtures" / "judge_labels.jsonl"


def _line(**fields: object) -> str:
    base: dict[str, object] = {"question": "q?", "answer": "a", "targets": ["t"], "label": True}
    base.update(fields)
    return json.dumps(base)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "line 1"),
        (_line() + "\n" + _line(label="yes"), "line 2"),
        (_line(targets=[]), "targets"),
        (json.dumps({"question": "q", "answer": "a", "label": True}), "targets"),
        ("\n\n", "no labelled answers"),
    ],
)
def test_a_bad_labels_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=message):
        load_labels(path)


def test_the_committed_labels_are_many_and_mixed() -> None:
    items = load_labels(LABELS)
    assert len(items) >= 100
    positives = sum(i.label for i in items)
    assert 0.2 < positives / len(items) < 0.8
    # answers where the words do not match are where the threshold matters: the file must have them
    unmatched = [i for i in items if not TargetJudge.normalized_match(i.answer, i.targets)]
    assert sum(i.label for i in unmatched) >= 10 and sum(not i.label for i in unmatched) >= 30


def test_the_fitted_threshold_beats_words_alone_on_toy_labels(embedder: Embedder) -> None:
    items = [
        LabelledAnswer("hobby?", "Hikes in the mountains.", ("Hiking",), True),
        LabelledAnswer("hobby?", "Mountain walks on weekends.", ("Hiking",), True),
        LabelledAnswer("hobby?", "I have no hobbies.", ("Hiking",), False),
        LabelledAnswer("hobby?", "Cooking pasta.", ("Hiking",), False),
        LabelledAnswer("pet?", "A dog.", ("Dog owner",), True),
        LabelledAnswer("pet?", "The weather is nice.", ("Dog owner",), False),
    ]
    report = agreement_report(TargetJudge(embedder), items, folds=2)
    assert report["agreement"] >= report["agreement_match_only"]
    assert report["agreement"] > 0.8
    assert report["true_positive"] + report["false_negative"] == 3
    assert len(report["disagreements"]) == round((1 - report["agreement"]) * len(items))


@pytest.mark.slow
def test_the_default_judge_agrees_with_the_hand_labels(embedder: Embedder) -> None:
    """The default threshold is the one calibrated on the committed labels: it must still agree with them."""
    report = agreement_report(TargetJudge(embedder), load_labels(LABELS))
    assert report["agreement_at_default"] >= 0.9
    assert report["agreement_at_default"] >= report["agreement_match_only"]
    assert (
        abs(report["threshold"] - DEFAULT_THRESHOLD) < 0.05
        or report["agreement"] - 0.01 <= report["agreement_at_default"]
    )


@pytest.mark.slow
def test_judge_command_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "judge.json"
    res = imprint(tmp_path, "eval", "judge", "--labels", str(LABELS), "--out", str(out))
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["labels"] == len(load_labels(LABELS)) and 0 < report["threshold"] <= 1.01
    assert report["provenance"]["judge"] == "TargetJudge"
    missing = imprint(tmp_path, "eval", "judge", "--labels", str(tmp_path / "nope"), "--out", str(out))
    assert missing.returncode == 2 and "cannot read labels" in missing.stderr
