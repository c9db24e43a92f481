"""`imprint eval upqa`: every method on the same UPQA records, one user per record.

For each record (one person's preference) and method, four questions are asked the way the agent asks them
(its system prompt, chat template, greedy decoding with its repetition penalty): the record's question
(efficacy), its paraphrase, its implicit question and its product-recommendation question. Each answer is
judged by `TargetJudge` (or an endpoint judge, `eval/endpoint_judge.py`) against the record's targets (all 9
phrasings of a cluster9 record). Edits are single edits into a fresh user per record (Personalization
Editing's protocol); `imprint eval stability` is where edits accumulate.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.prompts import build_messages
from consolidation.judge import AnswerJudge, Verdict
from eval.answering import Decoding, Prompt, answer_prompts, render
from eval.itemlog import ItemLog
from eval.methods import Method
from eval.plots import Series, footer_text, grouped_bars
from eval.provenance import write_report
from eval.tables import markdown_table, rate
from eval.upqa import UpqaRecord, edit_request
from eval.workspace import Workspace
from memory.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

QUESTIONS = (  # (metric, UpqaRecord field)
    ("efficacy", "question"),
    ("paraphrase", "question_paraphrased"),
    ("implicit", "implicit_question"),
    ("product", "product_question"),
)
CHUNK = 8  # records answered between two writes of the item log: an interruption loses at most these


@dataclass(frozen=True)
class UpqaPlan:
    methods: Sequence[Method]
    cluster_size: int = 1
    decoding: Decoding = field(default_factory=Decoding)
    # each edit holds the record's statement as recall shows it (`recalled_statement`), as consolidation
    # does with `consolidation_hold_recalled_words`; off, as consolidation is by default
    hold_statements: bool = False


def retrieval_user(record: UpqaRecord) -> str:
    return f"r-{record.index}"


def weights_user(method: Method, record: UpqaRecord, cluster_size: int) -> str | None:
    return f"{method.editor}-c{cluster_size}-{record.index}" if method.editor else None


def memory_lines(method: Method, workspace: Workspace, record: UpqaRecord, question: str) -> list[str]:
    """What the system prompt carries for this question: the statement (prompt), the recalled lines (rag,
    hybrid), or nothing (none, edit)."""
    if method.reveal_in_context:
        return [f'"{record.statement or record.target}"']
    if method.retrieval:
        return workspace.recalled_lines(retrieval_user(record), question)
    return []


def as_the_agent_asks(tokenizer: Any) -> Callable[[str], str]:
    """A question as the agent sends it with nothing recalled: its system prompt, then the question."""
    return lambda question: render(tokenizer, build_messages([], [], question))


HELD_IN_UPQA = "the statement as recalled"  # what each edit holds (`recalled_statement`), as plans say


def _prepare(workspace: Workspace, method: Method, record: UpqaRecord, plan: UpqaPlan) -> dict[str, Any]:
    """Write the record into the method's memory (observe, edit), once; what was done goes in the row."""
    memory: dict[str, Any] = {}
    if method.retrieval:
        memory["observations"] = workspace.observe(retrieval_user(record), [record.statement or ""])
    user = weights_user(method, record, plan.cluster_size)
    if user and method.editor:
        request = edit_request(
            record,
            workspace.tokenizer,
            as_the_agent_asks(workspace.tokenizer),
            hold_statement=plan.hold_statements,
        )
        provenance = {
            "record": record.index,
            "subject": record.subject,
            "target": record.target,
            "question": record.question,
        }
        memory["edit_seconds"] = round(workspace.edit(user, method.editor, request, provenance), 3)
    return memory


def run_upqa(
    workspace: Workspace,
    judge: AnswerJudge,
    records: Sequence[UpqaRecord],
    plan: UpqaPlan,
    items: ItemLog,
    advance: Callable[[int], None] = lambda n: None,
) -> None:
    """Answer and judge every (method, record) not yet in `items`; rows are appended as chunks finish.

    Chunks of records are the outer loop and methods the inner one, so a run stopped early leaves every
    method with the same records done, and its partial summary still compares like with like."""
    pending = [r for r in records if any(not items.has(f"{m.name}|{r.index}") for m in plan.methods)]
    for start in range(0, len(pending), CHUNK):
        chunk = pending[start : start + CHUNK]
        for method in plan.methods:
            todo = [r for r in chunk if not items.has(f"{method.name}|{r.index}")]
            if todo:
                _answer_chunk(workspace, judge, method, todo, plan, items)
                advance(len(todo))


def _answer_chunk(
    workspace: Workspace,
    judge: AnswerJudge,
    method: Method,
    chunk: Sequence[UpqaRecord],
    plan: UpqaPlan,
    items: ItemLog,
) -> None:
    memory = {r.index: _prepare(workspace, method, r, plan) for r in chunk}
    lines: dict[str, list[str]] = {}
    targets: dict[str, tuple[str, ...]] = {}
    prompts = []
    for r in chunk:
        for metric, attr in QUESTIONS:
            question = getattr(r, attr)
            if question:
                key = f"{r.index}|{metric}"
                targets[key] = r.targets
                lines[key] = memory_lines(method, workspace, r, question)
                messages = build_messages(lines[key], [], question)
                prompts.append(Prompt(key, messages, weights_user(method, r, plan.cluster_size)))
    answers = answer_prompts(workspace, prompts, plan.decoding)
    keys = list(targets)  # one batch: the local judge embeds once, an endpoint judge asks side by side
    judged = judge.judge_many([answers[k] for k in keys], [targets[k] for k in keys])
    verdicts = dict(zip(keys, judged, strict=True))
    for r in chunk:
        items.add(_row(method, r, memory[r.index], answers, verdicts, lines))


def _row(
    method: Method,
    record: UpqaRecord,
    memory: dict[str, Any],
    answers: dict[str, str],
    verdicts: dict[str, Verdict],
    lines: dict[str, list[str]],
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "key": f"{method.name}|{record.index}",
        "method": method.name,
        "record": record.index,
        "subject": record.subject,
        "target": record.target,
        "memory": memory,
    }
    for metric, attr in QUESTIONS:
        key = f"{record.index}|{metric}"
        if key not in answers:
            continue
        verdict = verdicts[key]
        row[metric] = {
            "question": getattr(record, attr),
            "answer": answers[key],
            "hit": verdict.hit,
            "how": verdict.how,
            "sim": round(verdict.similarity, 3),
            "memory_lines": lines[key],
        }
    return row


def summarize(rows: Sequence[dict[str, Any]], methods: Sequence[Method]) -> list[dict[str, Any]]:
    """One summary per method: each question kind's rate with its interval, and what memory cost."""
    out = []
    for method in methods:
        mine = [r for r in rows if r["method"] == method.name]
        summary: dict[str, Any] = {"method": method.name, "records": len(mine)}
        for metric, _ in QUESTIONS:
            summary[metric] = rate([r[metric]["hit"] for r in mine if metric in r])
        seconds = [r["memory"]["edit_seconds"] for r in mine if "edit_seconds" in r["memory"]]
        summary["median_edit_seconds"] = round(statistics.median(seconds), 2) if seconds else None
        observed = [r["memory"]["observations"] for r in mine if "observations" in r["memory"]]
        summary["observed_share"] = (
            round(sum(o > 0 for o in observed) / len(observed), 3) if observed else None
        )
        out.append(summary)
    return out


def markdown(summaries: Sequence[dict[str, Any]]) -> str:
    headers = [
        "method",
        "records",
        "efficacy",
        "paraphrase",
        "implicit",
        "product rec.",
        "median s/edit",
        "observed",
    ]
    rows = [
        [
            s["method"],
            s["records"],
            s["efficacy"],
            s["paraphrase"],
            s["implicit"],
            s["product"],
            s["median_edit_seconds"],
            s["observed_share"],
        ]
        for s in summaries
    ]
    return markdown_table(headers, rows)


def records_text(records: Sequence[UpqaRecord]) -> str:
    """How many records, and which where they are not the file's first N ("20 records: 0, 10, ..., 190")."""
    indices = [str(r.index) for r in records]
    if indices == [str(i) for i in range(len(indices))]:
        return f"{len(indices)} records"
    shown = indices if len(indices) <= 3 else [*indices[:2], "...", indices[-1]]
    return f"{len(indices)} records: {', '.join(shown)}"


def publish_upqa(
    out_dir: Path,
    rows: Sequence[dict[str, Any]],
    methods: Sequence[Method],
    records: Sequence[UpqaRecord],
    provenance: dict[str, Any],
) -> str:
    """Write summary.json, summary.md and upqa.png for the requested methods and records; returns the
    table. Rows of other methods or records (from an earlier, larger run into the folder) are left out."""
    wanted = {r.index for r in records}
    names = {m.name for m in methods}
    mine = [r for r in rows if r["record"] in wanted and r["method"] in names]
    summaries = summarize(mine, methods)
    table = markdown(summaries)
    head = f"UPQA, {records_text(records)}; {footer_text(provenance)}\n\n"
    write_report({"summaries": summaries, "provenance": provenance}, out_dir / "summary.json")
    atomic_write_bytes(out_dir / "summary.md", (head + table).encode("utf-8"))
    metrics = [m for m, _ in QUESTIONS]
    series = [
        Series(
            s["method"],
            list(range(len(metrics))),
            [s[m]["rate"] for m in metrics],
            [tuple(s[m]["ci95"]) if s[m]["n"] else None for m in metrics],
        )
        for s in summaries
    ]
    grouped_bars(
        out_dir / "upqa.png",
        metrics,
        series,
        f"UPQA: accuracy per question kind ({records_text(records)}; 95% intervals)",
        "share of answers stating the preference",
        footer_text(provenance),
    )
    return table
