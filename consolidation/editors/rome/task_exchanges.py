"""Worked requests from the data directory as chat exchanges: a user asks for a task, the assistant works it.

Why: ROME's chat contexts stand for the turns a served question comes after. Made of encyclopaedia
paragraphs (`contexts.exchange`), every earlier turn reads as "tell me about X" answered with prose; the
turns users actually send before a question are mostly requests (code, sums, rewrites) answered step by
step. GSM8K's test problems and their worked solutions (MIT licence) are the data directory's requests of
that kind. They are read only here; no probe or benchmark of this project uses GSM8K.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from memory.errors import InvalidInput

TASK_SOURCES = ("extra_gsm8k/*.jsonl",)  # relative to the data dir: JSON lines with question and answer
_CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K's calculator annotations: "2+1=<<2+1=3>>3"
_FINAL = re.compile(r"\n?#### *(.+)\s*$")  # ... and its final line: "#### 3"


def worked_answer(answer: str) -> str:
    """A GSM8K solution as an assistant would write it: annotations dropped, the final line a sentence."""
    text = _CALCULATOR.sub("", answer)
    return _FINAL.sub(lambda m: f"\nThe answer is {m.group(1).strip()}.", text).strip()


def task_exchanges(data_dir: Path, max_chars: int) -> list[tuple[str, str]]:
    """Every (request, worked answer) pair under `data_dir`, in file order, each side cut to `max_chars`."""
    files = [f for pattern in TASK_SOURCES for f in sorted(data_dir.glob(pattern))]
    if not files:
        raise InvalidInput(
            f"no worked requests for ROME's chat contexts under {data_dir} (looked for {TASK_SOURCES})"
        )
    pairs: list[tuple[str, str]] = []
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    question, answer = str(record["question"]).strip(), worked_answer(str(record["answer"]))
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise InvalidInput(
                        f"{path}:{number}: not a {{question, answer}} record ({exc})"
                    ) from None
                if question and answer:
                    pairs.append((question[:max_chars], answer[:max_chars]))
    return pairs
