"""Results files: written atomically, and each says which code, data and components produced it."""

from __future__ import annotations

import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from memory.atomic import atomic_write_bytes


def git_commit(repo: Path | None = None) -> str:
    """The commit of the working tree (with "+dirty" when it has uncommitted changes), or "unknown"."""
    cwd = repo or Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def provenance(**components: Any) -> dict[str, Any]:
    """A provenance block: commit, time, machine, plus the named components (model, data, judge...)."""
    return {
        "commit": git_commit(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{platform.machine()}, {platform.system()}, python {platform.python_version()}",
        **{k: str(v) for k, v in components.items()},
    }


def write_report(report: dict[str, Any], out: Path) -> None:
    """Write `report` as indented JSON, atomically: a reader never sees a half-written results file."""
    atomic_write_bytes(Path(out), (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
