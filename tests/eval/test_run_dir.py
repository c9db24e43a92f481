"""A results folder resumes only the experiment it holds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.run_dir import PLAN_FILE, open_run


def test_same_settings_resume_other_settings_are_refused(tmp_path: Path) -> None:
    fixed = {"data": Path("/data/upqa.json"), "cluster_size": 1}
    open_run(tmp_path / "run", fixed)
    assert json.loads((tmp_path / "run" / PLAN_FILE).read_text()) == {
        "data": "/data/upqa.json",
        "cluster_size": 1,
    }
    open_run(tmp_path / "run", fixed)  # a resume
    with pytest.raises(ValueError, match=r"cluster_size: was 1, now 3"):
        open_run(tmp_path / "run", {**fixed, "cluster_size": 3})
