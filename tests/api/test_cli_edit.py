"""`imprint edit` as a researcher runs it: sequential edits into one user, a report of the final memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.settings import Settings
from tests.api.test_cli import imprint

pytestmark = pytest.mark.slow


def test_edit_writes_a_report_and_versions(tmp_path: Path) -> None:
    data_dir = Settings().data_dir
    assert data_dir is not None
    data = data_dir / "upqa" / "UPQA" / "balanced_subset.json"
    out = tmp_path / "edit.json"
    res = imprint(
        tmp_path, "edit", "--user", "researcher", "--data", str(data), "--editor", "lora",
        "--limit", "2", "--neutral", "10", "--out", str(out),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert summary["editor"] == "lora" and summary["edits"] == 2
    assert 0.0 <= summary["efficacy"] <= 1.0 and 0.0 <= summary["locality"] <= 1.0
    assert summary["isolation_bit_identical"] is True
    assert [r["version"] for r in report["records"]] == [1, 2]
    assert [r["refitted"] for r in report["records"]] == [[], []] and summary["refits"] == 0  # LoRA: none
    assert report["provenance"]["commit"]

    # the drift report of that user's memory, printed and written (quick probes: the default ones are
    # exercised in tests/consolidation/test_drift_guard.py)
    drift_out = tmp_path / "drift.json"
    res = imprint(
        tmp_path,
        "drift",
        "--user",
        "researcher",
        "--probes",
        "locality,norm,retention",
        "--out",
        str(drift_out),
    )
    assert res.returncode in (0, 1), res.stderr[-3000:]  # 1: the report says it fails
    drift = json.loads(drift_out.read_text())
    names = {c["name"] for c in drift["checks"]}
    assert {"locality_kl", "retention"} <= names and any(n.startswith("norm_growth:") for n in names)
    assert drift["version"] == 2 and (res.returncode == 0) == drift["passed"]
    assert "| locality_kl |" in res.stdout


def test_unknown_drift_probe_is_a_clear_error(tmp_path: Path) -> None:
    res = imprint(tmp_path, "drift", "--user", "u", "--probes", "boolq,mmlu", "--out", "x.json")
    assert res.returncode == 2 and "mmlu" in res.stderr


def test_unknown_editor_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text("[]")
    res = imprint(
        tmp_path, "edit", "--user", "u", "--data", str(data), "--editor", "magic", "--out", "x.json"
    )
    assert res.returncode == 2
    assert "magic" in res.stderr and "known editors" in res.stderr


def test_a_set_field_the_editor_lacks_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    data = tmp_path / "d.json"
    data.write_text("[]")
    res = imprint(
        tmp_path, "edit", "--user", "u", "--data", str(data), "--editor", "lora", "--set", "v_steps=8",
        "--out", "x.json",
    )  # fmt: skip
    assert res.returncode == 2 and "no field of that name in the configs of ['lora']" in res.stderr
    assert not (tmp_path / "x.json").exists()
