"""PrefEval items for the multi-turn evaluation, joined with PrefEval-Pro's edit subject and target.

An item is one preference with one question that the preference should shape. It is revealed in one of three
ways (the *sets*): stated outright (`explicit`), chosen among options (`choice`, PrefEval's choice-based
exchange) or mentioned in passing inside a persona's conversation (`persona`); then k filler turns from
`filtered_inter_turns.json` follow, then the question. PrefEval-Pro (Personalization Editing's release)
gives each preference an edit subject and target; items are its records, so every method can be run on every
item, and the target doubles as the acknowledgment judge's anchor. PrefEval's classification options give
each preference one aligned and three violating answers, which the violation judge compares against.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.llm import Message
from memory.errors import InvalidInput

SETS = {  # set name → its folder under the PrefEval directory
    "explicit": "explicit_preference",
    "choice": "implicit_preference/choice-based",
    "persona": "implicit_preference/persona-driven",
}
OPTIONS = "mcq_options"
FILLERS = "filtered_inter_turns.json"
PRO_FILE = Path("upqa/prefeval_pro/prefeval_pro_balanced_200.json")  # under the data directory


@dataclass(frozen=True)
class PrefItem:
    """One preference, its question, its edit, and how each set reveals it."""

    index: int  # position in the PrefEval-Pro file
    topic: str
    preference: str
    question: str
    subject: str
    target: str
    reveals: dict[str, list[Message]]  # set → the turns revealing it (explicit: the user turn alone)
    aligned: str | None = None  # the classification option that follows the preference
    violating: tuple[str, ...] = ()  # the options that go against it


def _index(folder: Path) -> dict[str, dict[str, Any]]:
    """Every record of the topic files in `folder`, by preference text."""
    if not folder.is_dir():
        raise InvalidInput(f"{folder} is missing; pass PrefEval's folder (it has {', '.join(SETS.values())})")
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(folder.glob("*.json")):
        for record in json.loads(path.read_text()):
            out[record["preference"]] = record
    return out


def _choice_turns(record: dict[str, Any]) -> list[Message]:
    conv = record["conversation"]
    return [
        {"role": "user", "content": conv["query"]},
        {"role": "assistant", "content": conv["assistant_options"]},
        {"role": "user", "content": conv["user_selection"]},
        {"role": "assistant", "content": conv["assistant_acknowledgment"]},
    ]


def _persona_turns(record: dict[str, Any]) -> list[Message]:
    conv = record["conversation"]
    turns: list[Message] = []
    for key in sorted(conv, key=int):
        turns += [
            {"role": "user", "content": conv[key]["user"]},
            {"role": "assistant", "content": conv[key]["assistant"]},
        ]
    return turns


def load_items(
    prefeval_dir: Path, pro_file: Path, sets: Sequence[str], limit: int | None = None
) -> list[PrefItem]:
    """The PrefEval-Pro records (the first `limit`) with each requested set's reveal; a set that lacks a
    preference simply has no reveal for that item (the runner skips it and the summary counts it)."""
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        raise InvalidInput(f"unknown sets {unknown}; sets are {', '.join(SETS)}")
    try:
        pro = json.loads(Path(pro_file).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"cannot read PrefEval-Pro records from {pro_file}: {exc}") from exc
    indexes = {s: _index(Path(prefeval_dir) / SETS[s]) for s in sets}
    options = _index(Path(prefeval_dir) / OPTIONS) if (Path(prefeval_dir) / OPTIONS).is_dir() else {}
    items = []
    for i, rec in enumerate(pro[:limit] if limit else pro):
        missing = [f for f in ("preference", "question", "subject", "target") if not rec.get(f)]
        if missing:
            raise InvalidInput(f"{pro_file} record {i} lacks {missing}")
        reveals: dict[str, list[Message]] = {}
        for name, index in indexes.items():
            found = index.get(rec["preference"])
            if found is None:
                continue
            if name == "explicit":
                reveals[name] = [{"role": "user", "content": rec["preference"]}]
            elif name == "choice":
                reveals[name] = _choice_turns(found)
            else:
                reveals[name] = _persona_turns(found)
        opts = options.get(rec["preference"], {}).get("classification_task_options") or []
        items.append(
            PrefItem(
                index=i,
                topic=str(rec.get("topic", "")),
                preference=rec["preference"],
                question=rec["question"],
                subject=rec["subject"],
                target=rec["target"],
                reveals=reveals,
                aligned=opts[0] if opts else None,  # PrefEval lists the aligned option first
                violating=tuple(opts[1:]),
            )
        )
    return items


def _cut(text: str, max_chars: int) -> str:
    text = text.strip()
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "…"


def filler_turns(prefeval_dir: Path, k: int, max_chars: int) -> list[Message]:
    """The first `k` user/assistant pairs of PrefEval's filler conversations, in file order, each message
    cut to `max_chars` characters (the default model runs on a CPU with an 8k-token context)."""
    path = Path(prefeval_dir) / FILLERS
    if not path.exists():
        raise InvalidInput(f"{path} is missing; pass PrefEval's folder")
    pairs: list[Message] = []
    for conversation in json.loads(path.read_text()):
        messages = conversation["conversation"]
        for user, assistant in zip(messages[::2], messages[1::2], strict=False):
            if len(pairs) >= 2 * k:
                return pairs
            if user["role"] == "user" and assistant["role"] == "assistant":
                pairs += [
                    {"role": "user", "content": _cut(user["content"], max_chars)},
                    {"role": "assistant", "content": _cut(assistant["content"], max_chars)},
                ]
    if len(pairs) < 2 * k:
        raise InvalidInput(f"{path} has only {len(pairs) // 2} filler turns, {k} asked")
    return pairs
