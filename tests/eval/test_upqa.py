"""UPQA files become edit requests in chat form, with cluster synonyms; bad files are clear errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from agent.prompts import MEMORY_INTRO
from api.settings import Settings
from eval.upqa import edit_request, every_kth, load_upqa, probe_item, recalled_statement
from eval.upqa_eval import records_text
from memory.errors import InvalidInput


def _upqa() -> Path:
    data_dir = Settings().data_dir
    assert data_dir is not None, "tests need the data directory (../shared/data or IMPRINT_DATA_DIR)"
    return data_dir / "upqa" / "UPQA"


class FakeTokenizer:
    def apply_chat_template(self, messages: list[dict[str, str]], **_: object) -> str:
        return f"<|im_start|>user\n{messages[0]['content']}<|im_end|>\n<|im_start|>assistant\n"


def test_plain_records() -> None:
    records = load_upqa(_upqa() / "balanced_subset.json", limit=5)
    assert len(records) == 5
    first = records[0]
    assert (first.subject, first.target) == ("hobby", "Dancing at clubs")
    request = edit_request(first, FakeTokenizer())
    assert request.subject in request.prompt and request.prompt.endswith("assistant\n")
    assert request.target_synonyms == []
    item = probe_item(first)
    assert item.targets == ("Dancing at clubs",) and item.implicit and item.paraphrase


def test_an_edit_can_hold_the_statement_as_recall_shows_it() -> None:
    """The held text is the system turn recall builds around the record's quoted statement; a record
    without a statement holds nothing."""
    first = load_upqa(_upqa() / "balanced_subset.json", limit=1)[0]
    assert first.statement
    (held,) = recalled_statement(first, FakeTokenizer())
    assert MEMORY_INTRO in held and f'"{" ".join(first.statement.split())}"' in held
    assert edit_request(first, FakeTokenizer(), hold_statement=True).held_contexts == [held]
    assert edit_request(first, FakeTokenizer()).held_contexts == []
    assert recalled_statement(replace(first, statement=None), FakeTokenizer()) == []


def test_cluster9_records_carry_synonyms() -> None:
    (first,) = load_upqa(_upqa() / "balanced_subset_cluster9.json", limit=1)
    assert first.target == "Dancing at clubs" and len(first.targets) == 9
    request = edit_request(first, FakeTokenizer())
    assert len(request.target_synonyms) == 8 and len(request.paraphrases) == 8
    assert "Clubbing" in probe_item(first).targets


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    missing = tmp_path / "none.json"
    with pytest.raises(InvalidInput, match="cannot read"):
        load_upqa(missing)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"question": "What's my hobby?"}]))
    with pytest.raises(InvalidInput, match="record 0 lacks"):
        load_upqa(bad)
    bad.write_text(json.dumps({"question": "x"}))
    with pytest.raises(InvalidInput, match="JSON list"):
        load_upqa(bad)


def test_every_kth_record_spreads_a_run_across_the_file_and_keeps_file_indices() -> None:
    records = load_upqa(_upqa() / "balanced_subset_200.json")
    picked = every_kth(records, offset=5, stride=20, limit=4)
    assert [r.index for r in picked] == [5, 25, 45, 65]
    assert len({r.subject for r in picked}) > 1  # the first 4 records are all one kind (hobby)
    assert len({r.subject for r in records[:4]}) == 1
    assert every_kth(records) == records and every_kth(records, limit=3) == records[:3]
    with pytest.raises(InvalidInput, match="stride"):
        every_kth(records, stride=0)


def test_a_summary_says_which_records_it_covers() -> None:
    records = load_upqa(_upqa() / "balanced_subset_200.json")
    assert records_text(records[:12]) == "12 records"
    assert records_text(every_kth(records, stride=10)) == "20 records: 0, 10, ..., 190"
    assert records_text(every_kth(records, offset=3, stride=50, limit=2)) == "2 records: 3, 53"
