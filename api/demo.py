"""`imprint demo`: the whole loop on the bundled model, for a newcomer, in a few minutes.

The user reveals three preferences implicitly in a first session and repeats two of them, in other words,
in a second. A third session asks questions whose answers should show them, served from retrieval. Then
consolidation moves the two stable preferences into the user's weights (drift-checked), and a fourth
session asks again with fewer memory tokens in the prompt. Last, each committed preference is asked about by
name with and without the user's weights, nothing recalled: what the weights alone answer. ROME keys an edit
on its subject's tokens, so a question that names the topic reaches it and one that does not (the sessions'
"how do we get to the island?") is not changed by it; the demo shows both.
"""

from __future__ import annotations

import logging

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agent.threads import delete_user_threads
from api.console import memories_table, out, run_table
from api.runtime import Runtime
from consolidation.judge import TargetJudge
from consolidation.metrics import greedy_answers

log = logging.getLogger(__name__)

DEMO_USER = "demo-alice"

SESSION_1 = [
    "Hi! I'm planning a family trip for the summer holidays. Ugh, I get seasick easily, so last year's ferry "
    "ride was miserable for me.",
    "My kids are vegan, so we always end up checking every menu twice before we sit down.",
    "Also, I can't stand crowded tourist spots; give me a quiet cabin by a lake over a busy resort any day.",
]

SESSION_2 = [
    "By the way, I get seasick on boats, so please no ferries or cruises.",
    "My kids are vegan, so please keep every recipe plant-based.",
]

QUESTIONS = [
    "How should we get to the island for our holiday?",
    "What should I cook for the family tonight?",
    "Where should we stay for a weekend away?",
]

# asked about each committed preference by its topic, besides the edit's own question
TOPIC_QUESTION = "Any {} tips for our trip?"


def _session(runtime: Runtime, thread_id: str, turns: list[str], title: str) -> int:
    """Run the turns in a thread; returns the prompt tokens the recalled memory took over all of them."""
    agent = runtime.require_agent()
    tokenizer = runtime.require_lm().tokenizer
    memory_tokens = 0
    out.rule(f"[bold]{title}[/bold] (thread {thread_id})")
    for text in turns:
        out.print(f"[bold cyan]user>[/bold cyan] {text}")
        result = None
        out.print("[bold green]imprint>[/bold green] ", end="")
        for event in agent.stream(DEMO_USER, text, thread_id):
            if event.token:
                out.print(event.token, end="", markup=False)
            result = event.result or result
        out.print()
        if result and result.recalled:
            lines = "\n".join(f"{r['line']}  (similarity {r['similarity']:.2f})" for r in result.recalled)
            out.print(Panel(lines, title="recalled into the prompt", border_style="dim"))
            memory_tokens += len(tokenizer("\n".join(r["line"] for r in result.recalled))["input_ids"])
        out.print()
    agent.flush()
    return memory_tokens


def _show(message: str) -> None:
    out.print(f"[dim]{message}[/dim]")


def run_demo(runtime: Runtime) -> None:
    """Run the four sessions and one consolidation for the demo user, from a clean slate for that user."""
    store = runtime.store
    removed = store.delete_user(DEMO_USER)
    threads = delete_user_threads(runtime.require_agent().checkpointer, DEMO_USER)  # type: ignore[arg-type]
    versions = runtime.weights.delete_user(DEMO_USER) if runtime.weights is not None else 0
    if removed or threads or versions:
        log.info(
            "removed %d observation(s), %d thread(s) and %d weight version(s) of an earlier demo",
            removed,
            threads,
            versions,
        )
    _session(runtime, "session-1", SESSION_1, "Session 1: the user talks about a trip")
    _session(runtime, "session-2", SESSION_2, "Session 2: days later, some of it comes up again")
    out.print(memories_table(DEMO_USER, store.list(DEMO_USER)))
    before = _session(runtime, "session-3", QUESTIONS, "Session 3: questions, answered with retrieval")
    if runtime.consolidation is None:
        out.print(
            "[yellow]consolidation is off (no data directory): the preferences stay in retrieval[/yellow]"
        )
        return
    out.rule("[bold]Consolidation[/bold]: stable preferences move into the user's weights")
    run = runtime.consolidation.run_now(
        DEMO_USER, progress=lambda message: out.print(f"[dim]{message}[/dim]")
    )
    out.print(run_table(run.to_dict()))
    out.print(memories_table(DEMO_USER, store.list(DEMO_USER)))
    after = _session(runtime, "session-4", QUESTIONS, "Session 4: the same questions, after consolidation")
    table = Table(title="prompt tokens used for recalled memory (all three questions)")
    table.add_column("before consolidation", justify="right")
    table.add_column("after consolidation", justify="right")
    table.add_row(str(before), str(after))
    out.print(table)
    _from_weights(runtime)


def _from_weights(runtime: Runtime) -> None:
    """Ask about each preference of the user's latest weight version, by name, with the agent's system prompt
    and nothing recalled: once on the base model, once with the user's weights. A row whose answer shows the
    preference only with the weights is an answer served from the weights."""
    weights, lm = runtime.require_weights(), runtime.require_lm()
    versions = weights.versions(DEMO_USER)
    if not versions:
        out.print("[yellow]nothing was committed to the weights[/yellow]")
        return
    entries = versions[-1].requests
    asked = [(e, q) for e in entries for q in (e["question"], TOPIC_QUESTION.format(e["subject"]))]
    questions = [q for _, q in asked]
    render = runtime.require_consolidation().consolidator.render
    base = greedy_answers(lm.model, lm.tokenizer, questions, render=render)  # 24 tokens, as the edit metrics
    with weights.applied(DEMO_USER):
        mine = greedy_answers(lm.model, lm.tokenizer, questions, render=render)
    judge = TargetJudge(runtime.embedder)
    targets = [e["targets"] for e, _ in asked]
    base_hits = [v.hit for v in judge.judge_many(base, targets)]
    hits = [v.hit for v in judge.judge_many(mine, targets)]
    table = Table(
        title="asked by name, nothing recalled: the base model, then with the user's weights (✓ shows it)"
    )
    for col in ("question", "base model", "with demo-alice's weights"):
        table.add_column(col, overflow="fold")
    for q, b, m, b_hit, hit in zip(questions, base, mine, base_hits, hits, strict=True):
        table.add_row(Text(q), _marked(b, b_hit), _marked(m, hit))
    out.print(table)
    out.print(
        f"answered from the weights: {sum(hits)} of {len(questions)} questions show the preference with "
        f"{DEMO_USER}'s weights, {sum(base_hits)} on the base model"
    )


def _marked(answer: str, hit: bool) -> Text:
    return Text(("✓ " if hit else "  ") + " ".join(answer.split()))
