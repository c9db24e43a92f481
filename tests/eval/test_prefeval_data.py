"""PrefEval items join PrefEval-Pro's edits with each set's reveal and the classification options."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.settings import Settings
from eval.prefeval_data import PRO_FILE, filler_turns, load_items
from memory.errors import InvalidInput


def _dirs() -> tuple[Path, Path]:
    data_dir = Settings().data_dir
    assert data_dir is not None, "tests need the data directory (../shared/data or IMPRINT_DATA_DIR)"
    return data_dir / "prefeval", data_dir / PRO_FILE


def test_items_carry_every_sets_reveal_and_the_options() -> None:
    prefeval, pro = _dirs()
    items = load_items(prefeval, pro, ["explicit", "choice", "persona"])
    assert len(items) == 150  # every PrefEval-Pro record of this copy
    first = items[0]
    assert first.subject in first.question and first.target == "project-based learning"
    assert first.reveals["explicit"] == [{"role": "user", "content": first.preference}]
    choice = first.reveals["choice"]
    assert [m["role"] for m in choice] == ["user", "assistant", "user", "assistant"]
    persona = first.reveals["persona"]
    assert len(persona) >= 4 and [m["role"] for m in persona[:2]] == ["user", "assistant"]
    assert all(m["content"].strip() for m in persona)
    assert first.aligned and len(first.violating) == 3
    # the implicit sets lack six of the preferences: those items have no reveal there
    assert sum("choice" in it.reveals for it in items) == 144
    assert all("explicit" in it.reveals for it in items)


def test_limit_and_set_choice() -> None:
    prefeval, pro = _dirs()
    items = load_items(prefeval, pro, ["choice"], limit=3)
    assert [it.index for it in items] == [0, 1, 2] and all(set(it.reveals) == {"choice"} for it in items)
    with pytest.raises(InvalidInput, match="unknown sets"):
        load_items(prefeval, pro, ["implicit"])
    with pytest.raises(InvalidInput, match="cannot read"):
        load_items(prefeval, pro.with_name("missing.json"), ["explicit"])


def test_filler_turns_alternate_and_are_cut() -> None:
    prefeval, _ = _dirs()
    assert filler_turns(prefeval, 0, 100) == []
    turns = filler_turns(prefeval, 10, 120)
    assert len(turns) == 20 and [m["role"] for m in turns[:4]] == ["user", "assistant", "user", "assistant"]
    assert all(len(m["content"]) <= 120 for m in turns) and turns[1]["content"].endswith("…")
    assert filler_turns(prefeval, 4, 120) == turns[:8]  # the first k turns, in file order
    with pytest.raises(InvalidInput, match="filler turns"):
        filler_turns(prefeval, 10_000, 100)
