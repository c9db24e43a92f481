"""Results files say which commit and components produced them."""

from __future__ import annotations

import subprocess
from pathlib import Path

from eval.provenance import git_commit, provenance


def test_commit_matches_git() -> None:
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
    head = done.stdout.strip()
    assert git_commit(repo).split("+")[0] == head


def test_outside_a_repository_the_commit_is_unknown(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == "unknown"


def test_components_are_recorded_as_text(tmp_path: Path) -> None:
    block = provenance(data=tmp_path, model="bundled")
    assert block["data"] == str(tmp_path)
    assert block["model"] == "bundled"
    assert block["commit"]
    assert block["finished_at"].endswith("Z")
