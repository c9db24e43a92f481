"""Sequential edits for one user, then every record re-scored on the final weight memory.

This is what `imprint edit` and `imprint bench edit` run. Each edit is computed with the user's earlier
edits active (that is what "sequential" means for a served user) and committed as a new version: the
editor returns the user's whole new memory (`Editor.compute_memory`), so an editor that replaces a subject's
earlier update (ROME) or re-fits it on every live request (LoRA, FT-M, given the requests so far) stores a
whole version, and one that only adds stores just its increment. Each
record is scored twice: right after its own edit (`efficacy_at_edit`) and after the last edit.

A user has one value per attribute at a time: a later record about the same subject ("hobby") *supersedes*
an earlier one, as a user who took up a new hobby would. After the last edit the live records (the latest per
subject) must be answered with their targets: that is `efficacy`. Superseded records are reported apart
(`superseded_recalled`: how often the old value is still the answer), and `efficacy_all` scores every record
against its own target, which no single user can reach when subjects repeat.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
from tqdm import tqdm

from consolidation.editors import config_fields
from consolidation.editors.base import Editor, EditRequest
from consolidation.judge import TargetJudge
from consolidation.metrics import (
    edit_scores,
    greedy_answers,
    locality,
    locality_flips,
    next_token_logprobs,
)
from eval.peak_memory import PeakMemory
from eval.upqa import UpqaRecord, edit_request, probe_item
from memory.weights.weight_memory import WeightMemory

log = logging.getLogger(__name__)

ISOLATION_USER = "isolation-probe"  # never edited: must see the base model bit for bit


def unclaimed_overrides(names: Sequence[str], overrides: Sequence[str]) -> list[str]:
    """The `FIELD=VALUE` pairs whose field no editor among `names` has."""
    known = set().union(*(config_fields(n) for n in names)) if names else set()
    return [pair for pair in overrides if pair.partition("=")[0].strip() not in known]


def superseded_by(records: Sequence[UpqaRecord]) -> list[int | None]:
    """For each record, the position of the last later record about the same subject, or None if live."""
    last: dict[str, int] = {}
    for pos, rec in enumerate(records):
        last[rec.subject.casefold()] = pos
    return [
        None if last[r.subject.casefold()] == pos else last[r.subject.casefold()]
        for pos, r in enumerate(records)
    ]


def _mean(values: Sequence[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def run_sequential_edits(
    model: Any,
    tokenizer: Any,
    weights: WeightMemory,
    user_id: str,
    editor: Editor,
    records: Sequence[UpqaRecord],
    judge: TargetJudge,
    neutral: Sequence[str],
    progress: bool = True,
    hold_statements: bool = False,
) -> dict[str, Any]:
    """Edit `records` one by one into `user_id`'s weight memory; return per-record and summary metrics.
    `hold_statements`: each edit holds its record's statement as recall shows it, as consolidation holds a
    preference's own words (`EditRequest.held_contexts`), so the run measures what those holds cost."""
    base_lp = next_token_logprobs(model, tokenizer, neutral)  # no user active: the base model
    settings = editor.settings()
    seconds: list[float] = []
    versions: list[int] = []
    at_edit: list[dict[str, Any]] = []
    history: list[EditRequest] = []  # what the user's memory holds, for editors that re-fit it
    refitted: list[list[str]] = []  # per edit: earlier facts it wrote again (ROME's refit_lost)
    with PeakMemory() as peak:
        for rec in tqdm(records, desc=f"{editor.name} edits", unit="edit", disable=not progress):
            request = edit_request(rec, tokenizer, hold_statement=hold_statements)
            started = time.perf_counter()
            memory = editor.compute_memory(model, tokenizer, [request], weights.delta(user_id), history)
            took = time.perf_counter() - started
            refitted.append(editor.refitted)  # read once: the ledger row and the report say the same
            info = weights.commit(
                user_id,
                memory,
                whole=True,
                editor=editor.name,
                settings=settings,
                requests=[
                    {
                        "record": rec.index,
                        "subject": rec.subject,
                        "target": rec.target,
                        "question": rec.question,
                    }
                ],
                metrics={"refitted": refitted[-1]},
                seconds=took,
            )
            history.append(request)
            seconds.append(took)
            versions.append(info.version)
            with weights.applied(user_id):
                answer = greedy_answers(model, tokenizer, [rec.question])[0]
            at_edit.append({"answer": answer, "hit": judge.judge(answer, rec.targets).hit})

    with weights.applied(user_id):
        scores = edit_scores(model, tokenizer, judge, [probe_item(r) for r in records])
        edited_lp = next_token_logprobs(model, tokenizer, neutral)
        loc = locality(base_lp, edited_lp)
        flips = locality_flips(base_lp, edited_lp, neutral, tokenizer)
    with weights.applied(ISOLATION_USER):
        isolated = bool(torch.equal(base_lp, next_token_logprobs(model, tokenizer, neutral)))

    later = superseded_by(records)
    per_record = [
        {
            "record": r.index,
            "subject": r.subject,
            "target": r.target,
            "version": v,
            "seconds": round(s, 3),
            "superseded_by": None if sup is None else records[sup].index,
            "at_edit": now,
            "refitted": again,
            **m,
        }
        for r, v, s, sup, now, again, m in zip(
            records, versions, seconds, later, at_edit, refitted, scores["per_item"], strict=True
        )
    ]
    live = [p for p in per_record if p["superseded_by"] is None]
    old = [p for p in per_record if p["superseded_by"] is not None]

    def share(rows: list[dict[str, Any]], metric: str) -> float | None:
        return _mean([p[metric]["hit"] for p in rows if metric in p])

    summary = {
        "editor": editor.name,
        "settings": settings,
        "edits": len(records),
        "live_records": len(live),
        "efficacy": share(live, "efficacy"),
        "paraphrase": share(live, "paraphrase"),
        "implicit": share(live, "implicit"),
        "efficacy_at_edit": share(per_record, "at_edit"),
        "efficacy_all": share(per_record, "efficacy"),
        "superseded_recalled": share(old, "efficacy"),
        **loc,
        "locality_flips": flips,
        "isolation_bit_identical": isolated,
        "median_seconds_per_edit": round(statistics.median(seconds), 3) if seconds else None,
        "total_seconds": round(sum(seconds), 1),
        "refits": sum(len(r) for r in refitted),
        "peak_rss_mib": peak.peak_mib,
        "judge_threshold": judge.threshold,
        "neutral_prompts": len(neutral),
    }
    log.info(
        "%s: efficacy %s (live %d), at edit %s, paraphrase %s, implicit %s, locality %.2f after %d edits",
        editor.name,
        summary["efficacy"],
        len(live),
        summary["efficacy_at_edit"],
        summary["paraphrase"],
        summary["implicit"],
        summary["locality"],
        len(records),
    )
    return {"summary": summary, "records": per_record}
