"""`imprint demo`: two sessions. The user reveals three preferences implicitly in the first and, in a new
thread, asks questions whose answers should show them. Prints what was observed, what was recalled, and
the answers, so a newcomer sees the whole loop on the bundled model in a couple of minutes.
"""

from __future__ import annotations

import logging

from rich.panel import Panel

from agent.threads import delete_user_threads
from api.console import memories_table, out
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
    "How should we get to the island for our holiday?",
    "What should I cook for the family tonight?",
    "Where should we stay for a weekend away?",
]


def _session(runtime: Runtime, thread_id: str, turns: list[str], title: str) -> None:
    agent = runtime.require_agent()
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
        out.print()
    agent.flush()


def run_demo(runtime: Runtime) -> None:
    """Run both sessions for the demo user, starting from a clean slate for that user."""
    store = runtime.store
    removed = store.delete_user(DEMO_USER)
    threads = delete_user_threads(runtime.require_agent().checkpointer, DEMO_USER)  # type: ignore[arg-type]
    if removed or threads:
        log.info("removed %d observation(s) and %d thread(s) of an earlier demo", removed, threads)
    _session(runtime, "session-1", SESSION_1, "Session 1: the user talks about a trip")
    out.print(memories_table(DEMO_USER, store.list(DEMO_USER)))
    _session(runtime, "session-2", SESSION_2, "Session 2: a new thread, days later")
