"""Extraction on UPQA statements: stored and value-names-target rates, per attribute type, and the command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from consolidation.judge import TargetJudge
from eval.extraction_upqa import evaluate_upqa_statements
from memory.embedder import Embedder
from memory.extraction import CueExtractor, Extractor
from memory.observations import Candidate, Polarity
from tests.api.conftest import imprint_env

RECORDS = [
    {"input_attribute": "I work as a paramedic.", "attribute_type": "profession", "target": "Paramedic"},
    {"input_attribute": "I grew up in Maine.", "attribute_type": "location", "target": "Maine"},
    {"input_attribute": "Tell me a joke.", "attribute_type": "profession", "target": "Comedian"},
    {"attribute_type": "pet", "target": "Dog"},  # no statement: not counted
]


class _Wrong(Extractor):
    """Stores something for every statement, never the target."""

    def extract(self, text: str) -> list[Candidate]:
        return [Candidate(text, "misc", "weather", Polarity.LIKES, 1.0)]

    def extract_many(self, texts: Sequence[str]) -> list[list[Candidate]]:
        return [self.extract(t) for t in texts]


@pytest.fixture
def upqa_file(tmp_path: Path) -> Path:
    path = tmp_path / "upqa.json"
    path.write_text(json.dumps([{"question": "What's my job?", **r} for r in RECORDS]))
    return path


def test_facts_are_stored_and_name_their_target(embedder: Embedder, upqa_file: Path) -> None:
    extractor = CueExtractor(embedder)
    report = evaluate_upqa_statements(extractor, TargetJudge(embedder), upqa_file, progress=False)
    assert report["statements"] == 3
    assert report["stored_count"] == 2
    assert report["value_names_target_count"] == 2
    assert report["per_attribute_type"]["profession"]["stored"] == 0.5
    assert report["per_attribute_type"]["location"]["aspects"] == {"where I live": 1}
    assert report["example_misses"] == ["Tell me a joke."]


def test_a_stored_value_that_misses_the_target_is_not_counted(embedder: Embedder, upqa_file: Path) -> None:
    report = evaluate_upqa_statements(_Wrong(), TargetJudge(embedder), upqa_file, progress=False)
    assert report["stored_count"] == 3
    assert report["value_names_target_count"] == 0


@pytest.mark.slow
def test_the_command_adds_upqa_to_the_report_and_refuses_a_missing_file(
    tmp_path: Path, upqa_file: Path
) -> None:
    prefeval = tmp_path / "prefeval"
    (prefeval / "implicit_preference" / "persona-driven").mkdir(parents=True)
    persona = [{"preference": "I prefer trains.", "conversation": {"0": {"user": "I prefer trains."}}}]
    (prefeval / "implicit_preference" / "persona-driven" / "travel.json").write_text(json.dumps(persona))
    (prefeval / "filtered_inter_turns.json").write_text(json.dumps([{"conversation": []}]))
    out = tmp_path / "report.json"

    def run(*upqa: str) -> subprocess.CompletedProcess[str]:
        args = ["eval", "extraction", "--prefeval-dir", str(prefeval), "--out", str(out)]
        args += [a for path in upqa for a in ("--upqa", path)]
        return subprocess.run(
            [sys.executable, "-m", "api.cli", *args],
            capture_output=True,
            text=True,
            env=imprint_env(tmp_path / "state"),
            timeout=600,
        )

    missing = run(str(tmp_path / "nope.json"))
    assert missing.returncode != 0
    assert "no UPQA file" in missing.stderr
    assert not out.exists()

    done = run(str(upqa_file))
    assert done.returncode == 0, done.stderr
    assert "2 of 3 statements stored" in done.stderr
    assert json.loads(out.read_text())["upqa"]["upqa.json"]["stored_count"] == 2
