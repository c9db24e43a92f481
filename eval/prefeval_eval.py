"""`imprint eval prefeval`: does the preference survive k filler turns? Every method, set and turn count.

A conversation is the set's reveal, then k filler turns, then the question; each method sees it its own way
(`eval.methods`): `none` without the reveal, `prompt` whole, `rag` and `hybrid` through the agent's history
window plus what recall brings back, `edit:NAME` without the reveal but with the edit in the weights. The
explicit set's reveal is the user's statement plus the base model's own reply to it, generated once per item.
Answers are judged for acknowledgment and violation by `PreferenceJudge`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.llm import Message
from agent.prompts import build_messages
from consolidation.editors.base import EditRequest
from eval.answering import Decoding, Prompt, answer_prompts, render
from eval.itemlog import ItemLog
from eval.methods import Method
from eval.plots import Series, footer_text, line_panels
from eval.preference_judge import PreferenceCase, PreferenceJudge, PreferenceJudging
from eval.prefeval_data import PrefItem
from eval.provenance import write_report
from eval.tables import markdown_table, rate
from eval.workspace import Workspace
from memory.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

CHUNK = 4  # items answered between two writes of the item log (each item has sets × turn counts prompts)


@dataclass(frozen=True)
class PrefEvalPlan:
    methods: Sequence[Method]
    sets: Sequence[str]
    turns: Sequence[int]
    history_turns: int = 6  # the agent's window (IMPRINT_HISTORY_TURNS), for rag and hybrid
    decoding: Decoding = field(default_factory=lambda: Decoding(max_new_tokens=80))


def unit_key(method: Method, set_name: str, item: PrefItem, k: int) -> str:
    return f"{method.name}|{set_name}|{item.index}|{k}"


def weights_user(method: Method, item: PrefItem) -> str | None:
    return f"{method.editor}-p{item.index}" if method.editor else None


def retrieval_user(set_name: str, item: PrefItem) -> str:
    return f"p{item.index}-{set_name}"


def case_of(item: PrefItem) -> PreferenceCase:
    return PreferenceCase(item.preference, item.target, item.aligned, item.violating)


def reveal_replies(
    workspace: Workspace, items: Sequence[PrefItem], log_: ItemLog, decoding: Decoding
) -> dict[int, str]:
    """The base model's reply to each explicit statement, generated once and kept in the item log."""
    todo = [it for it in items if "explicit" in it.reveals and not log_.has(f"reveal|{it.index}")]
    if todo:
        prompts = [Prompt(str(it.index), build_messages([], [], it.preference)) for it in todo]
        for key, reply in answer_prompts(workspace, prompts, decoding).items():
            log_.add({"key": f"reveal|{key}", "method": None, "reply": reply})
    return {
        it.index: str((log_.get(f"reveal|{it.index}") or {})["reply"])
        for it in items
        if "explicit" in it.reveals
    }


def conversation(item: PrefItem, set_name: str, reply: str | None, fillers: list[Message]) -> list[Message]:
    """The reveal (with the base model's reply to an explicit statement), then the filler turns."""
    reveal = list(item.reveals[set_name])
    if set_name == "explicit":
        reveal.append({"role": "assistant", "content": reply or ""})
    return reveal + fillers


def _prompt(
    workspace: Workspace,
    method: Method,
    item: PrefItem,
    set_name: str,
    convo: list[Message],
    fillers: list[Message],
    history_turns: int,
) -> tuple[list[Message], list[str]]:
    """The method's messages for the question, and the memory lines its system prompt carries."""
    lines: list[str] = []
    if method.agent_window:
        history = convo[-2 * history_turns :] if history_turns else []
        lines = workspace.recalled_lines(retrieval_user(set_name, item), item.question)
    elif method.reveal_in_context:
        history = convo
    else:
        history = fillers
    return build_messages(lines, history, item.question), lines


def _prepare(workspace: Workspace, method: Method, item: PrefItem, sets: Sequence[str]) -> dict[str, Any]:
    memory: dict[str, Any] = {}
    if method.retrieval:
        for s in sets:
            turns = [m["content"] for m in item.reveals[s] if m["role"] == "user"]
            memory[f"observations_{s}"] = workspace.observe(retrieval_user(s, item), turns)
    user = weights_user(method, item)
    if user and method.editor:
        prompt = render(workspace.tokenizer, build_messages([], [], item.question))
        request = EditRequest(prompt=prompt, subject=item.subject, target=item.target)
        provenance = {"item": item.index, "subject": item.subject, "target": item.target}
        provenance["question"] = item.question
        memory["edit_seconds"] = round(workspace.edit(user, method.editor, request, provenance), 3)
    return memory


def run_prefeval(
    workspace: Workspace,
    judge: PreferenceJudging,
    items: Sequence[PrefItem],
    fillers: dict[int, list[Message]],
    plan: PrefEvalPlan,
    log_: ItemLog,
    advance: Callable[[int], None] = lambda n: None,
) -> None:
    """Answer and judge every (method, set, item, turn count) not yet in `log_`. Chunks of items are the
    outer loop, so a run stopped early has the same items done under every method."""
    replies = reveal_replies(workspace, items, log_, plan.decoding)
    pending = [it for it in items if any(_missing(log_, m, it, plan) for m in plan.methods)]
    for start in range(0, len(pending), CHUNK):
        chunk = pending[start : start + CHUNK]
        for method in plan.methods:
            rows: dict[str, dict[str, Any]] = {}
            prompts: list[Prompt] = []
            for it in chunk:
                if not _missing(log_, method, it, plan):
                    continue
                sets = [s for s in plan.sets if s in it.reveals]
                memory = _prepare(workspace, method, it, sets)
                for s in sets:
                    for k in plan.turns:
                        key = unit_key(method, s, it, k)
                        if log_.has(key):
                            continue
                        convo = conversation(it, s, replies.get(it.index), fillers[k])
                        messages, lines = _prompt(
                            workspace, method, it, s, convo, fillers[k], plan.history_turns
                        )
                        prompts.append(Prompt(key, messages, weights_user(method, it)))
                        rows[key] = {
                            "key": key,
                            "method": method.name,
                            "set": s,
                            "item": it.index,
                            "turns": k,
                            "memory": memory,
                            "memory_lines": lines,
                            "context_messages": len(messages),
                        }
            _judge_and_log(judge, chunk, rows, answer_prompts(workspace, prompts, plan.decoding), log_)
            advance(len(rows))


def _judge_and_log(
    judge: PreferenceJudging,
    chunk: Sequence[PrefItem],
    rows: dict[str, dict[str, Any]],
    answers: dict[str, str],
    log_: ItemLog,
) -> None:
    by_item = {it.index: it for it in chunk}
    for key, row in rows.items():
        verdict = judge.judge(answers[key], case_of(by_item[row["item"]]))
        row.update(
            answer=answers[key],
            acknowledged=verdict.acknowledged,
            violated=verdict.violated,
            ack_sim=_rounded(verdict.ack_similarity),
            violation_sim=_rounded(verdict.violation_similarity),
            aligned_sim=_rounded(verdict.aligned_similarity),
        )
        log_.add(row)


def _rounded(similarity: float | None) -> float | None:
    return None if similarity is None else round(similarity, 4)


def _missing(log_: ItemLog, method: Method, item: PrefItem, plan: PrefEvalPlan) -> bool:
    """Whether any (set, turn count) of this item is still to be answered by `method`."""
    return any(
        s in item.reveals and not log_.has(unit_key(method, s, item, k))
        for s in plan.sets
        for k in plan.turns
    )


def summarize(rows: Sequence[dict[str, Any]], plan: PrefEvalPlan) -> list[dict[str, Any]]:
    """Acknowledgment and violation rates per (method, set, turn count)."""
    out = []
    for method in plan.methods:
        for s in plan.sets:
            for k in plan.turns:
                mine = [r for r in rows if r["method"] == method.name and r["set"] == s and r["turns"] == k]
                out.append(
                    {
                        "method": method.name,
                        "set": s,
                        "turns": k,
                        "acknowledged": rate([r["acknowledged"] for r in mine]),
                        "violated": rate([r["violated"] for r in mine]),
                    }
                )
    return out


def markdown(summaries: Sequence[dict[str, Any]], plan: PrefEvalPlan, metric: str) -> str:
    headers = ["method", "set", *[f"{k} turns" for k in plan.turns]]
    table_rows = []
    for method in plan.methods:
        for s in plan.sets:
            cells = {x["turns"]: x[metric] for x in summaries if x["method"] == method.name and x["set"] == s}
            table_rows.append([method.name, s, *[cells.get(k) for k in plan.turns]])
    return markdown_table(headers, table_rows)


def rejudged(row: dict[str, Any], item: PrefItem, judge: PreferenceJudging) -> dict[str, Any]:
    """The row's verdicts under `judge`'s thresholds, from the similarities stored with it: a judge
    calibrated after the run (`imprint eval prefeval-judge`) re-scores a finished run without re-embedding.
    An endpoint judge's verdicts (no similarities) stand as they were given."""
    if not isinstance(judge, PreferenceJudge) or row.get("ack_sim") is None:
        return row
    verdict = judge.verdict(
        row["answer"], case_of(item), row["ack_sim"], row["violation_sim"], row["aligned_sim"]
    )
    return {**row, "acknowledged": verdict.acknowledged, "violated": verdict.violated}


def publish_prefeval(
    out_dir: Path,
    rows: Sequence[dict[str, Any]],
    plan: PrefEvalPlan,
    items: Sequence[PrefItem],
    judge: PreferenceJudging,
    provenance: dict[str, Any],
) -> str:
    """summary.json, summary.md (acknowledgment and violation tables) and one PNG per metric."""
    by_index = {it.index: it for it in items}
    mine = [
        rejudged(r, by_index[r["item"]], judge)
        for r in rows
        if r.get("method") and r["item"] in by_index and r["turns"] in plan.turns
    ]
    summaries = summarize(mine, plan)
    footer = footer_text(provenance)
    text = (
        f"PrefEval, {len(items)} items; {footer}\n\n### Acknowledgment\n\n"
        + markdown(summaries, plan, "acknowledged")
        + "\n### Violation\n\n"
        + markdown(summaries, plan, "violated")
    )
    write_report({"summaries": summaries, "provenance": provenance}, out_dir / "summary.json")
    atomic_write_bytes(out_dir / "summary.md", text.encode("utf-8"))
    for metric, name in (("acknowledged", "acknowledgment"), ("violated", "violation")):
        panels = {
            s: [
                Series(
                    m.name,
                    list(plan.turns),
                    [_at(summaries, m.name, s, k, metric)["rate"] for k in plan.turns],
                    [tuple(_at(summaries, m.name, s, k, metric)["ci95"]) for k in plan.turns],
                )
                for m in plan.methods
            ]
            for s in plan.sets
        }
        line_panels(
            out_dir / f"prefeval_{name}.png",
            panels,
            f"PrefEval: {name} rate against filler turns ({len(items)} items, 95% intervals)",
            "filler turns",
            {s: f"{name} rate" for s in plan.sets},
            footer,
            unit_range=True,
        )
    return text


def _at(summaries: Sequence[dict[str, Any]], method: str, s: str, k: int, metric: str) -> dict[str, Any]:
    return next(x[metric] for x in summaries if x["method"] == method and x["set"] == s and x["turns"] == k)
