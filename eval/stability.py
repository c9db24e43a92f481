"""`imprint eval stability`: how a model holds up as one user's edits accumulate, per editor.

N UPQA records are edited one by one into one user (each edit a committed weight-memory version, as in
service). Every K edits the whole memory is re-scored: retention (every live preference, the latest value per
subject, still answered), paraphrase, the drift guard's probes (BoolQ, NaturalQuestions, held-out
perplexity, the neutral prompts' next token, each edited matrix's norm growth), the edited matrices'
condition number and the seconds per edit since the last checkpoint. The weight memory lives in the output
folder, so an interrupted run resumes at its last committed edit, and every checkpoint is computed on the
memory exactly as it stood after that many edits.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from consolidation.drift import DriftGuard, retention_items
from consolidation.editors.base import Editor, subject_key
from consolidation.judge import TargetJudge
from consolidation.metrics import edit_scores
from eval.drift_run import report_row
from eval.edit_run import superseded_by
from eval.itemlog import ItemLog
from eval.plots import Series, footer_text, line_panels
from eval.provenance import write_report
from eval.tables import markdown_table
from eval.upqa import UpqaRecord, edit_request, probe_item
from memory.atomic import atomic_write_bytes
from memory.weights.delta import Delta
from memory.weights.hooks import DeltaApplier
from memory.weights.weight_memory import WeightMemory

log = logging.getLogger(__name__)

USER = "stability"
PANELS = (  # (row key, panel title)
    ("retention", "retention (live preferences recalled)"),
    ("paraphrase", "paraphrase"),
    ("boolq_accuracy", "BoolQ accuracy"),
    ("nq_loglik", "NQ gold log-likelihood / token"),
    ("perplexity", "perplexity (held-out wikitext)"),
    ("locality_top1", "neutral next token kept"),
)


@dataclass(frozen=True)
class StabilityPlan:
    edits: int
    every: int


def checkpoints(plan: StabilityPlan) -> list[int]:
    """Edit counts after which the memory is scored: every K-th, and the last."""
    points = list(range(plan.every, plan.edits + 1, plan.every))
    return points if points and points[-1] == plan.edits else [*points, plan.edits]


def condition_numbers(model: Any, delta: Delta) -> dict[str, float]:
    """σ_max / σ_min of each edited matrix W₀ + ΔW: a collapsing edit shows as a growing condition number."""
    out = {}
    for name in delta.modules():
        weight = model.get_submodule(name).weight.detach().float()
        sv = torch.linalg.svdvals(weight + delta.dense(name).to(weight.device, weight.dtype))
        out[name] = float(sv[0] / sv[-1].clamp_min(1e-12))
    return out


def live_positions(records: Sequence[UpqaRecord]) -> list[int]:
    """Where in the edit order each live record was edited (0-based)."""
    return [i for i, sup in enumerate(superseded_by(records)) if sup is None]


def alike_subjects(subjects: Sequence[str]) -> dict[str, list[str]]:
    """Each subject (by `subject_key`), with the others that share a word with it.

    Why: ROME keys a subject by the module's input at its last token, so "food preference" and "music
    preference" are keyed nearly alike (C⁻¹-cosine 0.89 at layer 8, against 0.06 for unrelated subjects),
    and over 300 UPQA_800 edits those are the values lost (docs/results.md#stability)."""
    keys = list(dict.fromkeys(subject_key(s) for s in subjects))
    words = {k: set(k.split()) for k in keys}
    return {k: [o for o in keys if o != k and words[k] & words[o]] for k in keys}


def lost_by_likeness(
    alike: dict[str, list[str]], lost: Sequence[dict[str, Any]]
) -> dict[str, dict[str, int]]:
    """How many live subjects share a word with another (`alike`, from `alike_subjects`) and how many of
    those were lost (`missed`), and the same for the rest: whether a series loses alike subjects or any."""
    gone = {subject_key(m["subject"]) for m in lost}
    out = {"alike": {"live": 0, "lost": 0}, "distinct": {"live": 0, "lost": 0}}
    for key, others in alike.items():
        group = out["alike" if others else "distinct"]
        group["live"] += 1
        group["lost"] += key in gone
    return out


def missed(
    records: Sequence[UpqaRecord],
    per_item: Sequence[dict[str, Any]],
    positions: Sequence[int] | None = None,
    alike: dict[str, list[str]] | None = None,
) -> list[dict[str, Any]]:
    """The live preferences the memory no longer answers, each with when it was edited and what the model
    says instead: a retention figure alone cannot tell whether the oldest values fade or some subjects
    crowd each other out, and the remedies differ. `per_item` is `edit_scores`' list over the live ones,
    `positions` their `live_positions` and `alike` their `alike_subjects` where the caller has them."""
    out = []
    positions = live_positions(records) if positions is None else positions
    if alike is None:
        alike = alike_subjects([records[i].subject for i in positions])
    for pos, scored in zip(positions, per_item, strict=True):
        efficacy = scored.get("efficacy")
        if efficacy is None or efficacy["hit"]:
            continue
        rec = records[pos]
        out.append(
            {
                "edit": pos + 1,
                "record": rec.index,
                "subject": rec.subject,
                "target": rec.target,
                "answer": efficacy["answer"],
                "alike": alike[subject_key(rec.subject)],  # live subjects sharing a word with it
            }
        )
    return out


def score_checkpoint(
    model: Any,
    tokenizer: Any,
    guard: DriftGuard,
    judge: TargetJudge,
    delta: Delta,
    records: Sequence[UpqaRecord],
) -> dict[str, Any]:
    """One row: the drift guard's report on `delta` (retention over every live record) plus paraphrase and
    condition numbers. `records` are the edits made so far."""
    requests = [{"subject": r.subject, "question": r.question, "target": r.target} for r in records]
    report = guard.check(delta, None, retention_items(requests, []))
    row = report_row(len(records), report)
    row.pop("reasons", None)
    positions = live_positions(records)
    live = [probe_item(records[i]) for i in positions]
    with DeltaApplier(model).activate(delta):
        scores = edit_scores(model, tokenizer, judge, live)
    row["paraphrase"] = scores.get("paraphrase")
    row["efficacy"] = scores.get("efficacy")
    row["live"] = len(live)
    alike = alike_subjects([records[i].subject for i in positions])
    row["missed"] = missed(records, scores["per_item"], positions, alike)
    row["lost_by_likeness"] = lost_by_likeness(alike, row["missed"])
    conds = condition_numbers(model, delta)
    row["condition_number"] = max(conds.values()) if conds else None
    row["reasons"] = report.reasons
    return row


def run_stability(
    model: Any,
    tokenizer: Any,
    weights: WeightMemory,
    editor: Editor,
    records: Sequence[UpqaRecord],
    guard: DriftGuard,
    judge: TargetJudge,
    plan: StabilityPlan,
    rows: ItemLog,
    advance: Callable[[int], None] = lambda n: None,
) -> None:
    """Edit until `plan.edits`, resuming after the edits already committed; score every checkpoint not yet
    in `rows` on the memory as it stood after that many edits."""
    done = len(weights.versions(USER))
    if done > plan.edits:
        raise ValueError(
            f"this folder's {editor.name} run already holds {done} edits, more than {plan.edits}"
        )
    points = checkpoints(plan)
    score = Checkpointer(model, tokenizer, weights, editor, records, guard, judge, points, rows)
    for n in (p for p in points if p <= done):  # a run killed between an edit and its checkpoint
        score(n)
    history = [edit_request(r, tokenizer) for r in records[:done]]
    advance(done)
    for n in range(done, plan.edits):
        request = edit_request(records[n], tokenizer)
        started = time.perf_counter()
        memory = editor.compute_memory(model, tokenizer, [request], weights.delta(USER), history)
        took = time.perf_counter() - started
        rec = records[n]
        weights.commit(
            USER,
            memory,
            whole=True,
            editor=editor.name,
            settings=editor.settings(),
            requests=[{"record": rec.index, "subject": rec.subject, "target": rec.target}],
            metrics={"refitted": editor.refitted},
            seconds=took,
        )
        history.append(request)
        advance(1)
        score(n + 1)


@dataclass
class Checkpointer:
    """Scores the memory after n edits, once per checkpoint (rows already logged are skipped)."""

    model: Any
    tokenizer: Any
    weights: WeightMemory
    editor: Editor
    records: Sequence[UpqaRecord]
    guard: DriftGuard
    judge: TargetJudge
    points: Sequence[int]
    rows: ItemLog

    def __call__(self, n: int) -> None:
        key = f"{self.editor.name}|{n}"
        if n not in self.points or self.rows.has(key):
            return
        delta = self.weights.delta(USER, n)
        row = score_checkpoint(self.model, self.tokenizer, self.guard, self.judge, delta, self.records[:n])
        i = self.points.index(n)
        previous = self.points[i - 1] if i else 0
        versions = self.weights.versions(USER)[:n]
        seconds = [v.seconds for v in versions[previous:]]
        row["median_seconds_per_edit"] = round(statistics.median(seconds), 3) if seconds else None
        diagnostics = self.editor.memory_diagnostics(self.model, self.tokenizer, delta)
        if self.editor.history_settings:  # it may write earlier facts again (ROME's refit_lost)
            # how many so far, from the ledger, so a resumed run counts the first run's too
            diagnostics["refits"] = sum(len(v.metrics.get("refitted", [])) for v in versions)
        row["diagnostics"] = {k: round(v, 5) for k, v in diagnostics.items()}
        self.rows.add({"key": key, "editor": self.editor.name, **row})
        verdict = "passed" if row["passed"] else "failed"
        log.info(
            "%s after %d edits: retention %s, drift check %s", self.editor.name, n, row["retention"], verdict
        )


COLUMNS = (  # (row key, table header)
    ("edits", "edits"),
    ("passed", "drift check passes"),
    ("retention", "retention"),
    ("paraphrase", "paraphrase"),
    ("boolq_accuracy", "BoolQ acc"),
    ("nq_loglik", "NQ loglik"),
    ("perplexity", "perplexity"),
    ("locality_top1", "next token kept"),
    ("locality_kl", "KL"),
    ("norm_growth", "norm growth"),
    ("scope_open_share", "scope opens at"),
    ("condition_number", "cond(W)"),
    ("median_seconds_per_edit", "s/edit"),
)
BASE_COLUMNS = ("boolq_accuracy", "nq_loglik", "perplexity", "locality_top1")  # what the base row shows


def table_columns(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Headers and cells of one editor's table: `COLUMNS`, then each `Editor.memory_diagnostics` figure
    its rows carry (by name, in the order first seen), so an editor's own figures need no entry here."""
    extra = list(dict.fromkeys(k for r in rows for k in r.get("diagnostics") or {}))
    headers = [h for _, h in COLUMNS] + [k.replace("_", " ") for k in extra]
    cells = [
        [r.get(k) for k, _ in COLUMNS] + [(r.get("diagnostics") or {}).get(k) for k in extra] for r in rows
    ]
    return headers, cells


def missed_text(row: dict[str, Any]) -> str:
    """The live preferences a checkpoint's memory no longer answers, oldest edit first, as a Markdown list."""
    lost = sorted(row["missed"], key=lambda m: m["edit"])
    head = f"Not answered after {row['edits']} edits: {len(lost)} of {row.get('live')} live preferences"
    split = row.get("lost_by_likeness")
    if split:
        alike, distinct = split["alike"], split["distinct"]
        head += (
            f" ({alike['lost']} of the {alike['live']} subjects that share a word with another live one,"
            f" {distinct['lost']} of the other {distinct['live']})"
        )
    if not lost:
        return head + ".\n"
    lines = [
        f"- edit {m['edit']}: {m['subject']} = {m['target']!r}; answers {_clip(m['answer'])!r}"
        + (f"; alike: {', '.join(m['alike'])}" if m.get("alike") else "")
        for m in lost
    ]
    return head + ". Edit number, subject, target, the answer now:\n\n" + "\n".join(lines) + "\n"


def _clip(text: str, limit: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def publish_stability(
    out_dir: Path,
    rows: Sequence[dict[str, Any]],
    editors: Sequence[str],
    plan: StabilityPlan,
    base: dict[str, float],
    provenance: dict[str, Any],
) -> str:
    """summary.json, summary.md (one table per editor, base model first) and stability.png."""
    points = set(checkpoints(plan))
    per_editor = {
        e: sorted((r for r in rows if r["editor"] == e and r["edits"] in points), key=lambda r: r["edits"])
        for e in editors
    }
    footer = footer_text(provenance)
    parts = [f"Sequential edits, one user, a check every {plan.every}; {footer}\n"]
    for e, mine in per_editor.items():
        first_fail = next((r["edits"] for r in mine if not r["passed"]), None)
        headers, cells = table_columns(mine)
        base_row = [base.get(k) if k in BASE_COLUMNS else "" for k, _ in COLUMNS]
        base_row = ["0 (base)", *base_row[1:], *[""] * (len(headers) - len(COLUMNS))]
        table = markdown_table(headers, [base_row, *cells])
        parts.append(f"### {e}\n\n{table}\nfirst failing drift check after: {first_fail or 'none'} edits\n")
        if mine and mine[-1].get("missed") is not None:
            parts.append(missed_text(mine[-1]))
    text = "\n".join(parts)
    summary = {e: mine[-1] if mine else None for e, mine in per_editor.items()}
    write_report(
        {"final": summary, "rows": per_editor, "base": base, "provenance": provenance},
        out_dir / "summary.json",
    )
    atomic_write_bytes(out_dir / "summary.md", text.encode("utf-8"))
    panels = {}
    for key, title in PANELS:
        series = [
            Series(e, [r["edits"] for r in mine], [r.get(key) for r in mine])
            for e, mine in per_editor.items()
        ]
        if key in base:
            series.append(Series("base model", [0, plan.edits], [base[key], base[key]]))
        panels[title] = series
    line_panels(
        out_dir / "stability.png",
        panels,
        f"Sequential edits into one user ({plan.edits} edits, checked every {plan.every})",
        "edits",
        {},
        footer,
    )
    return text
