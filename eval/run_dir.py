"""An evaluation's output folder: what was asked of it is written once, and a resume must ask the same.

Why: a folder resumes by skipping the items it already holds. Had the first run read another data file,
another cluster size or other editor settings, skipping would silently mix two experiments in one table;
the folder's `plan.json` makes that a clear error instead. Growing the run (a larger `--limit`, more methods,
more turn counts) is allowed: those only add items. Data is recorded by content (`fingerprint`) and settings
without their machine-local paths (`portable`), so a folder committed on one machine resumes on another
whose data lies elsewhere.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from memory.atomic import atomic_write_bytes

PLAN_FILE = "plan.json"
# parts of a plan keyed by name, where a later run may add names: items are per method, so a folder that
# ran edit:rome can go on with edit:lora as long as ROME's settings are the ones it ran with
PER_NAME = frozenset({"editors"})
# parts only some methods depend on: a later run without such methods leaves what the folder recorded
KEPT_WHEN_ABSENT = frozenset({"extractor", "edits"})
# editor settings that say where a file lies, not what the editor does
LOCATION_KEYS = frozenset({"cov_cache_dir", "data_dir"})


def fingerprint(path: Path) -> dict[str, str]:
    """A data file or folder by what it holds, not where it lies or what it is called: the SHA-256 of its
    bytes (for a folder, of every file's relative path and bytes, in sorted order)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            digest.update(f.relative_to(path).as_posix().encode("utf-8") + b"\0")
        with f.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return {"sha256": digest.hexdigest()}


def extractor_plan() -> dict[str, str]:
    """The extractor behind retrieval's observations, by a digest of what its code does.

    Why in a plan: `rag` and `hybrid` answer from what the extractor stored, so a folder whose first records
    were extracted with other cues must not be resumed with these. The digest covers every cue, prototype,
    aspect and rule (the `.py` files of `memory/extraction/`, in name order) as Python parses them, without
    comments, docstrings or line breaks, so reformatting or documenting the code leaves it unchanged."""
    import memory.extraction as package

    digest = hashlib.sha256()
    for f in sorted(Path(package.__file__).parent.glob("*.py")):
        tree = _without_docstrings(ast.parse(f.read_text(encoding="utf-8")))
        digest.update(f.name.encode("utf-8") + b"\0" + ast.dump(tree).encode("utf-8"))
    return {"name": "CueExtractor", "code": digest.hexdigest()}


class _Method(Protocol):
    """What a plan reads of a method: whether it recalls what the extractor stored, and which editor edits."""

    @property
    def retrieval(self) -> bool: ...

    @property
    def editor(self) -> str | None: ...


def extraction_plan(methods: Iterable[_Method]) -> dict[str, Any]:
    """The extractor's part of a plan, where a method recalls what it stored; methods without retrieval leave
    the plan as it was, so folders of edit-only runs resume whatever the extractor has become."""
    return {"extractor": extractor_plan()} if any(m.retrieval for m in methods) else {}


# how an evaluation writes an item's edit: the user's whole memory as the service writes it
# (`Workspace.edit`); folders from before it (the editor's bare increment) record no such part
EDITS_AS_SERVED = "memory"


def edits_plan(methods: Iterable[_Method], holds: str | None = None) -> dict[str, Any]:
    """How the edits behind a plan's answers were written, where a method edits. Folders made before this
    part existed hold the editor's bare increment (`compute_delta`) and record none, so they refuse to take
    edits written as the service writes them rather than mix the two. Methods without weights leave the
    plan as it was, so `none`, `prompt` and `rag` still resume those folders.

    `holds` names what each edit request holds in place (`EditRequest.held_contexts`), for evaluations whose
    requests carry any: a folder of edits that held nothing then refuses edits that hold something."""
    if not any(m.editor for m in methods):
        return {}
    return {"edits": f"{EDITS_AS_SERVED}, holding {holds}" if holds else EDITS_AS_SERVED}


def _without_docstrings(tree: ast.Module) -> ast.Module:
    """`tree` with the docstring of the module and of each class and function taken out."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            text = (
                first.value.value
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                else None
            )
            if isinstance(text, str):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def portable(settings: Mapping[str, Any]) -> dict[str, Any]:
    """An editor's settings without the keys that only locate files on this machine."""
    return {k: v for k, v in settings.items() if k not in LOCATION_KEYS}


class _Configured(Protocol):
    @property
    def history_settings(self) -> frozenset[str]: ...

    @property
    def added_settings(self) -> Mapping[str, tuple[Any, frozenset[str]]]: ...

    def settings(self) -> dict[str, Any]: ...


def editors_plan(
    editors: Mapping[str, _Configured], one_edit_each: bool = False
) -> dict[str, dict[str, Any]]:
    """Each editor's `portable` settings by name: the part of a plan that refuses a resume under other
    editor defaults, which would mix two editors' edits in one folder.

    `one_edit_each`: the evaluation gives every user a single edit (UPQA, PrefEval), so the settings that
    act only on a user's earlier edits (`Editor.history_settings`) cannot change its answers and are left
    out. Why: a folder written before such a setting existed then still resumes under the new defaults.
    For the same reason a setting added later (`Editor.added_settings`) is left out, with the settings that
    act only through it, while it has the value that edits as before it existed."""
    plan: dict[str, dict[str, Any]] = {}
    for name, editor in editors.items():
        settings = portable(editor.settings())
        dropped = set(editor.history_settings) if one_edit_each else set()
        for field, (before, through) in editor.added_settings.items():
            if settings.get(field) == before:
                dropped |= {field, *through}
        plan[name] = {k: v for k, v in settings.items() if k not in dropped}
    return plan


def open_run(out_dir: Path, fixed: Mapping[str, Any]) -> Path:
    """Create `out_dir` or reopen it; `fixed` are the settings every run into this folder must share.

    Raises `ValueError` naming each setting that differs from the folder's first run. Two parts may differ
    without that: editors the folder has not used yet are added to its plan (`PER_NAME`), and a part only
    some methods depend on (`KEPT_WHEN_ABSENT`) may be left out by a run without such methods."""
    out_dir = Path(out_dir)
    path = out_dir / PLAN_FILE
    wanted = json.loads(json.dumps(dict(fixed), default=str))  # as it reads back from the file
    if not path.exists():
        atomic_write_bytes(path, (json.dumps(wanted, indent=2) + "\n").encode("utf-8"))
        return out_dir
    before = json.loads(path.read_text())
    merged = _merged(before, wanted)
    keys = [*merged, *(k for k in before if k not in merged)]  # a setting dropped is a change too
    changed = {k: (before.get(k), merged.get(k)) for k in keys if before.get(k) != merged.get(k)}
    changed = {k: v for k, v in changed.items() if k not in PER_NAME or _clash(before.get(k), wanted.get(k))}
    if changed:
        what = "; ".join(f"{k}: was {old!r}, now {new!r}" for k, (old, new) in changed.items())
        raise ValueError(
            f"{out_dir} holds a run with other settings ({what}); use another --out folder, or the "
            "same settings to resume it"
        )
    if merged != before:  # a method with an editor the folder had not used yet
        atomic_write_bytes(path, (json.dumps(merged, indent=2) + "\n").encode("utf-8"))
    return out_dir


def _merged(before: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """`wanted`, with the per-name entries of `before` that this run does not name kept, and a part the
    folder recorded that this run's methods do not depend on (`KEPT_WHEN_ABSENT`) kept as it was."""
    merged = dict(wanted)
    for key in PER_NAME:
        if isinstance(before.get(key), dict) and isinstance(wanted.get(key), dict):
            merged[key] = {**before[key], **wanted[key]}
    for key in KEPT_WHEN_ABSENT:
        if key in before and key not in wanted:
            merged[key] = before[key]
    return merged


def _clash(before: Any, wanted: Any) -> bool:
    """Whether two per-name maps give one name different settings (new names are not a clash)."""
    if not isinstance(before, dict) or not isinstance(wanted, dict):
        return before != wanted
    return any(before[name] != wanted[name] for name in before.keys() & wanted.keys())
