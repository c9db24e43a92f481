"""ROME's chat contexts made of worked requests: GSM8K problems read as a user's request and the solution as
the assistant's answer, drawn reproducibly, and a clear error when the data dir has none or a bad line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.llm import ChatLM
from api.settings import Settings
from consolidation.editors import get_editor
from consolidation.editors.rome.contexts import chat_contexts, contexts_of_exchanges, exchange
from consolidation.editors.rome.editor import RomeEditor
from consolidation.editors.rome.task_exchanges import task_exchanges, worked_answer
from memory.errors import InvalidInput

PROBLEM = {
    "question": "A robe takes 2 bolts of blue fiber and half that much white fiber. How many bolts in total?",
    "answer": "It takes 2/2=<<2/2=1>>1 bolt of white fiber\nSo the total is 2+1=<<2+1=3>>3 bolts\n#### 3",
}


def _data_dir(tmp_path: Path, lines: list[str]) -> Path:
    folder = tmp_path / "data" / "extra_gsm8k"
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path / "data"


def test_a_worked_answer_reads_as_an_assistant_wrote_it() -> None:
    assert worked_answer(PROBLEM["answer"]) == (
        "It takes 2/2=1 bolt of white fiber\nSo the total is 2+1=3 bolts\nThe answer is 3."
    )
    assert worked_answer("No final line here.") == "No final line here."


def test_task_exchanges_are_every_request_and_answer_cut_to_length(tmp_path: Path) -> None:
    other = {"question": "What is 7 times 6?", "answer": "7 * 6 = <<7*6=42>>42\n#### 42"}
    data_dir = _data_dir(tmp_path, [json.dumps(PROBLEM), "", json.dumps(other)])
    pairs = task_exchanges(data_dir, max_chars=40)
    assert pairs == [
        (PROBLEM["question"][:40], "It takes 2/2=1 bolt of white fiber\nSo th"),
        ("What is 7 times 6?", "7 * 6 = 42\nThe answer is 42."),
    ]


def test_no_requests_or_a_bad_line_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no worked requests"):
        task_exchanges(tmp_path, max_chars=300)
    data_dir = _data_dir(tmp_path, [json.dumps(PROBLEM), json.dumps({"question": "no answer"})])
    with pytest.raises(InvalidInput, match=r"test\.jsonl:2: not a \{question, answer\} record"):
        task_exchanges(data_dir, max_chars=300)


def test_an_unknown_source_is_refused_when_the_editor_is_made() -> None:
    with pytest.raises(ValueError, match="chat_context_source must be one of"):
        get_editor("rome", chat_context_source="novels")


def test_exchanges_are_drawn_as_text_paragraphs_are(lm: ChatLM) -> None:
    """The same seed picks the same places in a pool however its exchanges were made, so chat contexts of
    text are exactly what they were before worked requests could be chosen instead."""
    paragraphs = [f"Sentence {i} opens it. " + "And the rest answers it at length. " * 8 for i in range(30)]
    from_text = chat_contexts(lm.tokenizer, iter(paragraphs), 2, 3, 120, seed=4)
    pool = [exchange(p[:120]) for p in paragraphs]
    assert contexts_of_exchanges(lm.tokenizer, pool, 2, 3, seed=4) == from_text
    with pytest.raises(InvalidInput, match="chat contexts need 6 exchanges, found 5"):
        contexts_of_exchanges(lm.tokenizer, pool[:5], 2, 3, seed=4)


def test_the_editor_draws_its_chat_contexts_from_worked_requests(lm: ChatLM, tmp_path: Path) -> None:
    data_dir = Settings().data_dir
    assert data_dir is not None
    editor = get_editor(
        "rome",
        data_dir=data_dir,
        cov_cache_dir=tmp_path,
        n_prefixes=0,
        chat_contexts=2,
        chat_context_turns=3,
        chat_context_source="tasks",
    )
    assert isinstance(editor, RomeEditor)
    contexts = editor._contexts_of(lm.model, lm.tokenizer)
    assert len(contexts) == 2 and contexts[0] != contexts[1]
    requests = {q for q, _ in task_exchanges(data_dir, 300)}
    for context in contexts:
        assert context.text.count("The answer is") >= 1  # worked solutions, not encyclopaedia prose
        asked = [q for q in requests if q in context.text]
        assert len(asked) == 3  # three of GSM8K's problems, each a user turn
