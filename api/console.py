"""Shared console helpers for the command line: logging set-up and the memories table."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from memory.observations import Observation

out = Console(highlight=False)  # answers and tables: stdout
err = Console(stderr=True, highlight=False)  # progress and logs: stderr, so pipes stay clean


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr; quiet the chatty libraries unless asked."""
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err, show_path=False)]
    )
    for noisy in ("httpx", "chromadb", "sentence_transformers", "transformers", "urllib3", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a hard dependency
        pass


def memories_table(user_id: str, observations: Sequence[Observation]) -> Table:
    """A table of a user's observations, oldest first."""
    table = Table(title=f"memories of {user_id} ({len(observations)})", show_lines=False)
    for col in ("id", "status", "aspect", "polarity", "value", "conf", "thread:turn", "evidence"):
        table.add_column(col, overflow="fold")
    for o in observations:
        table.add_row(
            o.id[:8],
            o.status.value,
            o.aspect,
            o.polarity.value,
            o.value,
            f"{o.confidence:.2f}",
            f"{o.thread_id}:{o.turn}",
            o.evidence,
        )
    return table


def run_table(run: dict[str, Any]) -> Table:
    """One consolidation run (`Run.to_dict()`): what became of each candidate preference."""
    result = run.get("result") or {}
    title = (
        f"consolidation of {run['user_id']}: {run['status']}"
        + (f", version {result['version']}" if result.get("version") else "")
        + (f" ({run['error']})" if run.get("error") else "")
    )
    table = Table(title=title)
    for col in ("preference", "action", "reason", "observations"):
        table.add_column(col, overflow="fold")
    for o in result.get("outcomes", []):
        table.add_row(o["preference"], o["action"], o["reason"], str(len(o.get("observations", []))))
    return table


def keys_table(keys: Sequence[Any]) -> Table:
    """API keys as `imprint keys list` shows them: ids and tenants, never secrets."""
    from api.schemas.common import iso

    table = Table(title="API keys")
    for column in ("key id", "tenant", "label", "created", "state"):
        table.add_column(column)
    for k in keys:
        state = "active" if k.active else f"revoked {iso(k.revoked)}"
        table.add_row(k.key_id, k.tenant, k.label, iso(k.created) or "", state)
    return table
