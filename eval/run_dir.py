"""An evaluation's output folder: what was asked of it is written once, and a resume must ask the same.

Why: a folder resumes by skipping the items it already holds. Had the first run read another data file,
another cluster size or other editor settings, skipping would silently mix two experiments in one table;
the folder's `plan.json` makes that a clear error instead. Growing the run (a larger `--limit`, more methods,
more turn counts) is allowed: those only add items.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from memory.atomic import atomic_write_bytes

PLAN_FILE = "plan.json"


def open_run(out_dir: Path, fixed: Mapping[str, Any]) -> Path:
    """Create `out_dir` or reopen it; `fixed` are the settings every run into this folder must share.

    Raises `ValueError` naming each setting that differs from the folder's first run."""
    out_dir = Path(out_dir)
    path = out_dir / PLAN_FILE
    wanted = json.loads(json.dumps(dict(fixed), default=str))  # as it reads back from the file
    if path.exists():
        before = json.loads(path.read_text())
        changed = {k: (before.get(k), v) for k, v in wanted.items() if before.get(k) != v}
        if changed:
            what = "; ".join(f"{k}: was {old!r}, now {new!r}" for k, (old, new) in changed.items())
            raise ValueError(
                f"{out_dir} holds a run with other settings ({what}); use another --out folder, or the "
                "same settings to resume it"
            )
        return out_dir
    atomic_write_bytes(path, (json.dumps(wanted, indent=2) + "\n").encode("utf-8"))
    return out_dir
