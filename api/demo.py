"""`imprint demo`: the whole loop on the bundled model, for a newcomer, in a few minutes.

The user reveals three preferences implicitly in a first session and repeats two of them, in other words,
in a second. A third session asks questions whose answers should show them, served from retrieval. Then
consolidation moves the two stable preferences into the user's weights (drift-checked), and a fourth
session asks again: those answers now come from the weights, and the prompt carries fewer memory tokens.
"""

from __future__ import annotations

import logging

from rich.panel import Panel
from rich.table import Table

from agent.threads import delete_user_threads
from api.console import memories_table, out, run_table
from api.runtime import Runtime

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
    after = _session(runtime, "session-4", QUESTIONS, "Session 4: the same questions, memory now in weights")
    table = Table(title="prompt tokens used for recalled memory (all three questions)")
    table.add_column("before consolidation", justify="right")
    table.add_column("after consolidation", justify="right")
    table.add_row(str(before), str(after))
    out.print(table)
