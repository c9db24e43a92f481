"""What every `imprint` command shares: the config options, settings loading, errors and report writing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.console import err, out
from api.settings import Settings

if TYPE_CHECKING:
    from consolidation.editors.base import Editor

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file (IMPRINT_CONFIG).")]
StateOpt = Annotated[Path | None, typer.Option("--state-dir", help="State directory (IMPRINT_STATE_DIR).")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Editor config FIELD=VALUE (repeatable), e.g. layer=6 or solve_ridge=1e-2."),
]
HoldStatementsOpt = Annotated[
    bool,
    typer.Option(
        "--hold-statements",
        help="Each edit holds its record's statement as recall shows it (consolidation_hold_recalled_words).",
    ),
]


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


def editors_for(
    names: Sequence[str], cluster_size: int, settings: Settings, overrides: Sequence[str] = ()
) -> dict[str, Editor]:
    """The named editors, each config changed by the `--set FIELD=VALUE` pairs that name its fields.

    Every command that takes `--set` builds its editors here, before any model loads, so a typo in a field
    or a value costs no time and reads the same whichever command it was given to."""
    from consolidation.editors import editor_for
    from eval.edit_run import unclaimed_overrides

    if names and settings.data_dir is None:
        raise fail("editors need a data directory (ROME's statistics): set IMPRINT_DATA_DIR")
    try:
        unclaimed = unclaimed_overrides(names, overrides)
        if unclaimed:
            raise fail(f"--set {unclaimed}: no field of that name in the configs of {list(names)}")
        data_dir = settings.data_dir or Path()
        return {n: editor_for(n, cluster_size, data_dir, settings.cache_dir, list(overrides)) for n in names}
    except KeyError as exc:  # an unknown editor: the registry's message names the known ones
        raise fail(str(exc.args[0] if exc.args else exc)) from None
    except (ValueError, TypeError) as exc:  # a value its field cannot take
        raise fail(f"--set: {exc}") from None
