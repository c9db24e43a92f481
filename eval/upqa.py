"""UPQA records (plain and cluster9 files) as edit requests and probe items.

A plain record has strings; a cluster9 record has lists of 9 phrasings for `attribute_type`, `question` and
`target`, the last element being the canonical one. The edit prompt is the question in the chat template the
agent uses, so edits are written in the form they are later asked in; the subject is the attribute type
("hobby"), which occurs in the question.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.prompts import recall_context
from consolidation.editors.base import EditRequest
from consolidation.metrics import ProbeItem, Render
from memory.errors import InvalidInput
from memory.recall import memory_line

REQUIRED = ("question", "attribute_type", "target")


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


@dataclass(frozen=True)
class UpqaRecord:
    """One preference: canonical question, subject and target, plus the alternatives of a cluster record."""

    index: int
    question: str
    subject: str
    target: str
    question_paraphrased: str | None
    implicit_question: str | None
    questions: tuple[str, ...]  # all phrasings, canonical last
    subjects: tuple[str, ...]
    targets: tuple[str, ...]
    statement: str | None = None  # `input_attribute`: how the user said it ("I like to dance at the club.")
    product_question: str | None = None  # `product_recommendation_question`


def load_upqa(path: Path, limit: int | None = None) -> list[UpqaRecord]:
    """Read a UPQA-format JSON list; a record missing a required field is a clear error naming it."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"cannot read UPQA data from {path}: {exc}") from exc
    if not isinstance(raw, list):
        raise InvalidInput(f"{path} must hold a JSON list of records, got {type(raw).__name__}")
    out = []
    for i, rec in enumerate(raw[:limit] if limit else raw):
        missing = [f for f in REQUIRED if not rec.get(f)]
        if missing:
            raise InvalidInput(f"{path} record {i} lacks {missing}; UPQA records need {list(REQUIRED)}")
        qs, subs, tgts = _as_list(rec["question"]), _as_list(rec["attribute_type"]), _as_list(rec["target"])
        out.append(
            UpqaRecord(
                index=i,
                question=qs[-1],
                subject=subs[-1],
                target=tgts[-1],
                question_paraphrased=rec.get("question_paraphrased") or None,
                implicit_question=rec.get("implicit_question") or None,
                questions=tuple(qs),
                subjects=tuple(subs),
                targets=tuple(tgts),
                statement=rec.get("input_attribute") or None,
                product_question=rec.get("product_recommendation_question") or None,
            )
        )
    return out


def every_kth(
    records: list[UpqaRecord], offset: int = 0, stride: int = 1, limit: int | None = None
) -> list[UpqaRecord]:
    """Records `offset`, `offset + stride`, ...: at most `limit` of them. Why: UPQA files are grouped by
    attribute type, so the first N records are one or two kinds of preference, and a run that cannot afford
    all of them needs a spread across kinds to say anything about the whole file."""
    if offset < 0 or stride < 1 or (limit is not None and limit < 1):
        raise InvalidInput(
            f"record selection needs offset ≥ 0, stride ≥ 1 and limit ≥ 1; got {offset}, {stride}, {limit}"
        )
    return records[offset::stride][:limit]


def chat_prompt(tokenizer: Any, question: str) -> str:
    """The question as the agent asks it: chat template, up to the assistant's turn."""
    text: str = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
    )
    return text


def recalled_statement(record: UpqaRecord, tokenizer: Any) -> list[str]:
    """The record's statement as recall shows it in the system prompt (`recall_context`), for an edit to hold
    (`EditRequest.held_contexts`), as consolidation holds a preference's own words; none without one."""
    if not record.statement:
        return []
    return [recall_context(tokenizer, [memory_line(record.statement)])]


def edit_request(
    record: UpqaRecord, tokenizer: Any, render: Render | None = None, hold_statement: bool = False
) -> EditRequest:
    """The record as an edit: chat-form question, subject = attribute type, synonyms from a cluster record.

    `render` builds the prompt from a question (default: the question as the only chat turn); the method
    comparison renders it the way the agent asks, system prompt included, so edits meet their questions in
    the form they are later asked in. `hold_statement`: the edit holds the record's statement as recall
    shows it (`recalled_statement`), as consolidation holds a preference's own words when asked to."""
    subject = record.subject
    render = render or (lambda question: chat_prompt(tokenizer, question))
    prompt = render(record.question)
    if subject not in prompt:  # case differs ("Hobby" vs "hobby"): use the prompt's own spelling
        start = prompt.lower().rfind(subject.lower())  # the question's, not an earlier system prompt's
        if start < 0:
            raise InvalidInput(
                f"record {record.index}: subject {subject!r} not in question {record.question!r}"
            )
        subject = prompt[start : start + len(subject)]
    return EditRequest(
        prompt=prompt,
        subject=subject,
        target=record.target,
        paraphrases=[render(q) for q in record.questions[:-1]],
        subject_synonyms=list(record.subjects[:-1]),
        target_synonyms=list(record.targets[:-1]),
        held_contexts=recalled_statement(record, tokenizer) if hold_statement else [],
    )


def probe_item(record: UpqaRecord) -> ProbeItem:
    """What the metrics ask for this record; any target phrasing counts as recalled."""
    return ProbeItem(
        question=record.question,
        targets=record.targets,
        paraphrase=record.question_paraphrased,
        implicit=record.implicit_question,
    )
