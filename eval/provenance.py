"""What produced a result: every results file says which code, data and components made it."""

from __future__ import annotations

import platform
import subprocess
import time
from pathlib import Path
from typing import Any


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
