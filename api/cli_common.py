"""What every `imprint` command shares: the config options, settings loading, errors and report writing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from api.console import err, out
from api.settings import Settings

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file (IMPRINT_CONFIG).")]
StateOpt = Annotated[Path | None, typer.Option("--state-dir", help="State directory (IMPRINT_STATE_DIR).")]


def settings_for(config: Path | None, state_dir: Path | None = None) -> Settings:
    overrides = {"state_dir": state_dir} if state_dir else {}
    return Settings.load(config_file=config, **overrides)


def fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/bold red] {message}")
    return typer.Exit(code=2)


def publish(report: dict[str, Any], table: str, out_file: Path) -> None:
    """Write a benchmark's JSON report and its markdown table beside it, and print the table."""
    from eval.provenance import write_report
    from memory.atomic import atomic_write_bytes

    write_report(report, out_file)
    atomic_write_bytes(out_file.with_suffix(".md"), table.encode("utf-8"))
    out.print(table, markup=False, highlight=False)
    err.print(f"report written to {out_file} and {out_file.with_suffix('.md')}")


def csv_list(value: str, kind: Callable[[str], Any], what: str) -> list[Any]:
    try:
        items = [kind(v.strip()) for v in value.split(",") if v.strip()]
    except ValueError:
        raise fail(f"{what}: expected a comma-separated list, got {value!r}") from None
    if not items:
        raise fail(f"{what}: give at least one value")
    return items
