"""The extraction evaluation on a tiny PrefEval-shaped folder: matching, false positives, controls, report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from eval.extraction import evaluate_extraction
from eval.provenance import write_report
from memory.embedder import Embedder
from memory.extraction import CueExtractor, Extractor
from memory.observations import Candidate, Polarity

PERSONA = [
    {
        "preference": "I always avoid seafood because of a shellfish allergy.",
        "conversation": {
            "0": {"user": "Hi! I'm planning a dinner party. Any menu ideas?", "assistant": "Sure."},
            "1": {"user": "I'm allergic to shellfish, so no seafood please. Dessert?", "assistant": "."},
        },
    },
    {
        "preference": "I prefer trains over planes for long-distance travel.",
        "conversation": {
            "0": {"user": "I'm going to Vienna next month. What should I see?", "assistant": "Lots."},
            "1": {"user": "I usually prefer the train to flying. Realistic?", "assistant": "."},
        },
    },
]
FILLER = [
    {
        "conversation": [
            {"role": "user", "content": "Write a function that adds two numbers."},
            {"role": "assistant", "content": "def add(a, b): return a + b"},
            {"role": "user", "content": "What is the capital of France?"},
        ]
    }
]


class _Echo(Extractor):
    """Returns every sentence as a candidate: the matcher must accept it and every filler turn is an FP."""

    def extract(self, text: str) -> list[Candidate]:
        return [Candidate(text, "misc", text, Polarity.LIKES, 1.0)]


class _Silent(Extractor):
    def extract(self, text: str) -> list[Candidate]:
        return []

    def extract_many(self, texts: Sequence[str]) -> list[list[Candidate]]:
        return [[] for _ in texts]


@pytest.fixture
def prefeval_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "implicit_preference" / "persona-driven"
    folder.mkdir(parents=True)
    (folder / "travel.json").write_text(json.dumps(PERSONA))
    (tmp_path / "filtered_inter_turns.json").write_text(json.dumps(FILLER))
    return tmp_path


def test_cue_extractor_recalls_and_stays_quiet_on_filler(embedder: Embedder, prefeval_dir: Path) -> None:
    report = evaluate_extraction(CueExtractor(embedder), embedder, prefeval_dir, progress=False)
    assert report["n_conversations"] == 2
    assert report["recall"] == 1.0
    assert report["filler_user_turns"] == 2
    assert report["false_positives"] == 0
    assert report["per_topic_recall"] == {"travel": 1.0}
    assert 0.0 <= report["control_match_rate"] <= 1.0
    assert report["mean_candidates_per_conversation"] >= 1.0


def test_silent_extractor_has_zero_recall(embedder: Embedder, prefeval_dir: Path) -> None:
    report = evaluate_extraction(_Silent(), embedder, prefeval_dir, progress=False)
    assert report["recall"] == 0.0
    assert report["matched"] == 0
    assert len(report["example_misses"]) == 2


def test_every_filler_candidate_counts_as_false_positive(embedder: Embedder, prefeval_dir: Path) -> None:
    report = evaluate_extraction(_Echo(), embedder, prefeval_dir, progress=False)
    assert report["false_positives"] == 2
    assert report["fp_per_100_turns"] == 100.0
    assert report["example_false_positives"][0]["turn"].startswith("Write a function")


def test_limit_caps_conversations(embedder: Embedder, prefeval_dir: Path) -> None:
    report = evaluate_extraction(_Silent(), embedder, prefeval_dir, limit=1, progress=False)
    assert report["n_conversations"] == 1
    assert report["filler_user_turns"] == 1


def test_missing_folder_names_the_fix(embedder: Embedder, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="prefeval_dir"):
        evaluate_extraction(_Silent(), embedder, tmp_path, progress=False)


def test_write_report_is_atomic_and_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "report.json"
    write_report({"recall": 0.5}, out)
    write_report({"recall": 0.9}, out)
    assert json.loads(out.read_text()) == {"recall": 0.9}
    assert [p.name for p in out.parent.iterdir()] == ["report.json"]
