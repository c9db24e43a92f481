"""`imprint bench drift`: sequential edits to one user with the drift report after every K of them.

What it answers: how the default model's general ability (BoolQ, NaturalQuestions, perplexity), its
neutral next tokens, the edited matrices' norms and the user's own earlier preferences hold up as edits
accumulate, and how long one full check takes. Commits here are not gated (the series must go on to show
where a gate would have stopped it); each row says whether the guard would have passed that memory.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
from tqdm import tqdm

from consolidation.drift import DriftGuard, DriftReport, retention_items
from consolidation.editors.base import Editor, EditRequest
from eval.upqa import UpqaRecord, edit_request
from memory.weights.weight_memory import WeightMemory

log = logging.getLogger(__name__)

COLUMNS = (  # (row key, table header)
    ("edits", "edits"),
    ("passed", "passes"),
    ("boolq_accuracy", "BoolQ acc"),
    ("boolq_margin", "BoolQ margin"),
    ("nq_loglik", "NQ loglik"),
    ("nq_exact_match", "NQ EM"),
    ("perplexity", "perplexity"),
    ("locality_kl", "KL"),
    ("locality_top1", "next token kept"),
    ("norm_growth", "norm growth"),
    ("scope_open_share", "scope opens at"),
    ("retention", "retention"),
    ("probe_seconds", "probes s"),
    ("check_seconds", "check s"),
)


def base_summary(guard: DriftGuard) -> dict[str, float]:
    """The base model's probe scores (means over the fixed items)."""
    base = guard.base_scores()
    out = {
        k: float(torch.tensor(base[k], dtype=torch.float64).mean()) for k in base if k != "locality_logprobs"
    }
    if "ppl_window_nll" in out:
        out["perplexity"] = float(torch.tensor(out.pop("ppl_window_nll")).exp())
    return out


def report_row(edits: int, report: DriftReport) -> dict[str, Any]:
    """One table row from a report: each check's candidate value, the worst over modules of a per-module
    check (norm growth, a scoped module's open share), the verdict."""
    row: dict[str, Any] = {"edits": edits, "passed": report.passed, "check_seconds": round(report.seconds, 1)}
    retention = next((c for c in report.checks if c.name == "retention"), None)
    retention_seconds = retention.detail.get("seconds", 0.0) if retention is not None else 0.0
    row["probe_seconds"] = round(report.seconds - retention_seconds, 1)  # the fixed probes, any user
    for c in report.checks:
        metric, _, module = c.name.partition(":")
        if module:  # one check per edited module (norm growth, a scope's reach): the worst of them
            row[metric] = max(row.get(metric, c.candidate), c.candidate)
        else:
            row[c.name] = c.candidate
    row["reasons"] = report.reasons
    return row


def run_drift_series(
    model: Any,
    tokenizer: Any,
    weights: WeightMemory,
    user_id: str,
    editor: Editor,
    records: Sequence[UpqaRecord],
    guard: DriftGuard,
    every: int,
    progress: bool = True,
    hold_statements: bool = False,
) -> dict[str, Any]:
    """Edit `records` into `user_id` one by one; after every `every` edits (and the last), check drift.
    `hold_statements`: each edit holds its record's statement as recall shows it, as consolidation does."""
    started = time.perf_counter()
    base = base_summary(guard)
    base_seconds = time.perf_counter() - started
    history: list[EditRequest] = []
    provenance: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    edit_seconds: list[float] = []
    for i, rec in enumerate(tqdm(records, desc=f"{editor.name} edits", unit="edit", disable=not progress), 1):
        request = edit_request(rec, tokenizer, hold_statement=hold_statements)
        t0 = time.perf_counter()
        memory = editor.compute_memory(model, tokenizer, [request], weights.delta(user_id), history)
        edit_seconds.append(time.perf_counter() - t0)
        entry = {"record": rec.index, "subject": rec.subject, "question": rec.question, "target": rec.target}
        weights.commit(
            user_id,
            memory,
            whole=True,
            editor=editor.name,
            settings=editor.settings(),
            requests=[entry],
            metrics={"refitted": editor.refitted},
            seconds=edit_seconds[-1],
        )
        history.append(request)
        provenance.append(entry)
        if i % every == 0 or i == len(records):
            report = guard.check(weights.delta(user_id), None, retention_items(provenance, []))
            rows.append({**report_row(i, report), "report": report.to_dict()})
            log.info("after %d edits: drift check %s", i, "passed" if report.passed else "FAILED")
    checks = [r["check_seconds"] for r in rows]
    probes = [r["probe_seconds"] for r in rows]
    summary = {
        "editor": editor.name,
        "settings": editor.settings(),  # with any `--set` changes: what this series was run with
        "edits": len(records),
        "every": every,
        "hold_statements": hold_statements,
        "base": base,
        "base_scores_seconds": round(base_seconds, 1),
        "median_check_seconds": round(statistics.median(checks), 1) if checks else None,
        # the fixed probes alone (the "one full check at the default sizes"); the first check of a
        # process also records what the replayed blocks receive, so it is reported apart
        "median_probe_seconds": round(statistics.median(probes[1:] or probes), 1) if probes else None,
        "first_probe_seconds": probes[0] if probes else None,
        "median_seconds_per_edit": round(statistics.median(edit_seconds), 3) if edit_seconds else None,
        "first_failing_edits": next((r["edits"] for r in rows if not r["passed"]), None),
    }
    return {"summary": summary, "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    """The series as a markdown table, base model first."""
    s = result["summary"]
    head = "| " + " | ".join(h for _, h in COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(COLUMNS)]
    base = {"edits": 0, "passed": "", **s["base"]}
    for row in [base, *result["rows"]]:
        cells = []
        for key, _ in COLUMNS:
            v = row.get(key, "")
            cells.append(
                "yes" if v is True else "no" if v is False else f"{v:.4f}" if isinstance(v, float) else str(v)
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        f"\n{s['editor']}, {s['edits']} sequential edits; median check {s['median_check_seconds']} s "
        f"(fixed probes alone: median {s['median_probe_seconds']} s after the first, "
        f"{s['first_probe_seconds']} s the first time), "
        f"base scores computed in {s['base_scores_seconds']} s; "
        + (
            "every check passed."
            if s["first_failing_edits"] is None
            else f"first failing check after {s['first_failing_edits']} edits."
        )
    )
    return "\n".join(lines)
