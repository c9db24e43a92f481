"""The probe items, read from the data directory as fixed seeded subsets (the same items on every check, so
base and candidate scores pair up item by item)."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Set
from dataclasses import dataclass
from pathlib import Path

from memory.errors import InvalidInput

BOOLQ_FILE = Path("boolq") / "val_hf_format.jsonl"
NQ_FILE = Path("nq_open") / "NQ-open.dev.jsonl"
HELDOUT_FILE = Path("wikitext") / "wiki.test.raw"  # ROME's statistics read wiki.valid.raw and wikipedia/


@dataclass(frozen=True)
class BoolqItem:
    passage: str
    question: str
    answer: bool


@dataclass(frozen=True)
class NqItem:
    question: str
    answers: tuple[str, ...]


def _lines(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing; set IMPRINT_DATA_DIR to the folder that has {path.parent.name}/"
        )
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _sample(n_total: int, n: int, seed: int, salt: str) -> list[int]:
    """`n` indices of `n_total`, seeded per probe (so changing one probe's size leaves the others alone)."""
    if n > n_total:
        raise InvalidInput(f"asked for {n} {salt} items, the file has {n_total}")
    return sorted(random.Random(f"{salt}:{seed}").sample(range(n_total), n))


def boolq_items(data_dir: Path, n: int, seed: int) -> list[BoolqItem]:
    rows = _lines(Path(data_dir) / BOOLQ_FILE)
    return [
        BoolqItem(str(rows[i]["passage"]), str(rows[i]["question"]), bool(rows[i]["answer"]))
        for i in _sample(len(rows), n, seed, "boolq")
    ]


def nq_items(data_dir: Path, n: int, seed: int, exclude: Set[str] = frozenset()) -> list[NqItem]:
    """NQ-open questions, except those in `exclude` (casefolded: the locality prompts are NQ questions)."""
    rows = [r for r in _lines(Path(data_dir) / NQ_FILE) if str(r["question"]).casefold() not in exclude]
    return [
        NqItem(str(rows[i]["question"]), tuple(str(a) for a in rows[i]["answer"]))  # type: ignore[attr-defined]
        for i in _sample(len(rows), n, seed, "nq")
    ]


def heldout_text(data_dir: Path) -> str:
    path = Path(data_dir) / HELDOUT_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; set IMPRINT_DATA_DIR to the folder that has wikitext/")
    return path.read_text(encoding="utf-8")


def file_fingerprint(data_dir: Path) -> str:
    """Names and sizes of the probe files: base scores are cached per data as well as per model."""
    parts = []
    for rel in (BOOLQ_FILE, NQ_FILE, HELDOUT_FILE):
        path = Path(data_dir) / rel
        parts.append(f"{rel}:{path.stat().st_size if path.exists() else -1}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]
