"""The `imprint` command line: chat, memories, demo, serve, and the evaluation commands."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from api.cli_common import (
    ConfigOpt,
    HoldStatementsOpt,
    SetOpt,
    StateOpt,
    csv_list,
    editors_for,
    fail,
    publish,
    settings_for,
)
from api.console import err, memories_table, out, setup_logging
from api.eval_cli import eval_app
from memory.errors import MemoryError_
from memory.observations import Status

log = logging.getLogger(__name__)

app = typer.Typer(help="imprint: a conversational agent whose memory learns.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
bench_app = typer.Typer(
    help="Time and score imprint's components on the default model.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")
keys_app = typer.Typer(help="API keys: one tenant per key, stored hashed.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@app.callback()
def _root(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    setup_logging(verbose)


@app.command()
def chat(
    user: Annotated[str, typer.Option("--user", help="Who is talking.")],
    thread: Annotated[
        str, typer.Option("--thread", help="Conversation thread; resumes if it exists.")
    ] = "default",
    config: ConfigOpt = None,
    state_dir: StateOpt = None,
) -> None:
    """Chat with imprint. Interactive on a terminal; one turn per line when input is piped."""
    from api.runtime import build_runtime

    runtime = build_runtime(settings_for(config, state_dir))
    agent = runtime.require_agent()
    interactive = sys.stdin.isatty()
    try:
        if interactive:
            earlier = agent.history(user, thread)
            err.print(f"thread {thread}: {len(earlier) // 2} earlier turn(s). Ctrl-D to quit.")
        while True:
            if interactive:
                out.print("[bold cyan]you>[/bold cyan] ", end="")
            line = sys.stdin.readline()
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            if interactive:
                out.print("[bold green]imprint>[/bold green] ", end="")
            for event in agent.stream(user, text, thread):
                if event.token:
                    out.print(event.token, end="", markup=False)
            out.print()
    except MemoryError_ as exc:
        raise fail(str(exc)) from None
    finally:
        runtime.close()


@app.command()
def memories(
    user: Annotated[str, typer.Option("--user")],
    status: Annotated[Status | None, typer.Option("--status")] = None,
    config: ConfigOpt = None,
    state_dir: StateOpt = None,
) -> None:
    """Show what imprint has observed about a user."""
    from api.runtime import build_runtime

    runtime = build_runtime(settings_for(config, state_dir), with_model=False)
    try:
        out.print(memories_table(user, runtime.store.list(user, status=status)))
    except MemoryError_ as exc:
        raise fail(str(exc)) from None
    finally:
        runtime.close()


@app.command()
def demo(config: ConfigOpt = None, state_dir: StateOpt = None) -> None:
    """Two scripted sessions: preferences revealed in the first show up in the second."""
    from api.demo import run_demo
    from api.runtime import build_runtime

    err.print("loading the bundled model and embedder (the first run converts the model, ~30 s)...")
    runtime = build_runtime(settings_for(config, state_dir))
    try:
        run_demo(runtime)
    finally:
        runtime.close()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option("--host")] = None,
    port: Annotated[int | None, typer.Option("--port")] = None,
    config: ConfigOpt = None,
    state_dir: StateOpt = None,
) -> None:
    """Start the HTTP service (FastAPI on uvicorn)."""
    import uvicorn

    from api.app import create_app

    settings = settings_for(config, state_dir)
    uvicorn.run(
        create_app(settings), host=host or settings.host, port=port or settings.port, log_level="info"
    )


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option("--tenant", help="The tenant the key acts for.")],
    label: Annotated[str, typer.Option("--label", help="A note to recognise the key by.")] = "",
    config: ConfigOpt = None,
    state_dir: StateOpt = None,
) -> None:
    """Create a key and print it (shown this once: only its hash is stored)."""
    from api.auth import KeyStore

    settings = settings_for(config, state_dir)
    store = KeyStore(settings.keys_path)
    try:
        key, record = store.create(tenant, label)
    except MemoryError_ as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    out.print(key, markup=False, highlight=False)
    err.print(f"key {record.key_id} for tenant {record.tenant}: store it now, it cannot be shown again")


@keys_app.command("list")
def keys_list(config: ConfigOpt = None, state_dir: StateOpt = None) -> None:
    """Every key's id, tenant, label and whether it is revoked (never the keys themselves)."""
    from api.auth import KeyStore
    from api.console import keys_table

    store = KeyStore(settings_for(config, state_dir).keys_path)
    try:
        out.print(keys_table(store.list()))
    finally:
        store.close()


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key id `keys list` shows.")],
    config: ConfigOpt = None,
    state_dir: StateOpt = None,
) -> None:
    """Stop accepting a key (its record stays for audit)."""
    from api.auth import KeyStore

    store = KeyStore(settings_for(config, state_dir).keys_path)
    try:
        record = store.revoke(key_id)
    except MemoryError_ as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    err.print(f"key {record.key_id} of tenant {record.tenant} revoked")


def _progress_printer(user: str) -> Callable[[str], None]:
    def show(message: str) -> None:
        err.print(f"[dim]{user}:[/dim] {message}")

    return show


@app.command()
def consolidate(
    user: Annotated[str | None, typer.Option("--user", help="Consolidate this user.")] = None,
    all_users: Annotated[
        bool, typer.Option("--all", help="Consolidate every user with pending observations.")
    ] = False,
    config: ConfigOpt = None,
    state_dir: StateOpt = None,
) -> None:
    """Move a user's stable preferences from retrieval into their weight memory (drift-checked)."""
    from api.console import run_table
    from api.runtime import build_runtime

    if (user is None) == (not all_users):
        raise fail("give exactly one of --user U and --all")
    runtime = build_runtime(settings_for(config, state_dir))
    try:
        try:
            service = runtime.require_consolidation()
        except RuntimeError as exc:
            raise fail(str(exc)) from None
        users = service.due_users() if all_users else [user or ""]
        if not users:
            err.print("no user has pending observations: nothing to consolidate")
        failed = False
        for name in users:
            try:
                run = service.run_now(name, progress=_progress_printer(name))
            except MemoryError_ as exc:
                raise fail(str(exc)) from None
            out.print(run_table(run.to_dict()))
            failed = failed or run.status != "done"
        if failed:
            raise typer.Exit(code=1)
    finally:
        runtime.close()


@app.command()
def edit(
    user: Annotated[str, typer.Option("--user", help="Whose weight memory receives the edits.")],
    data: Annotated[Path, typer.Option("--data", help="UPQA-format JSON (plain or cluster9).")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write per-record and summary metrics.")],
    editor: Annotated[str, typer.Option("--editor", help="A registered editor: rome, lora, ftm.")] = "rome",
    cluster_size: Annotated[int, typer.Option("--cluster-size", min=1, max=9)] = 1,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N records.")] = None,
    neutral: Annotated[int, typer.Option("--neutral", min=1, help="Neutral prompts for locality.")] = 50,
    overrides: SetOpt = None,
    config: ConfigOpt = None,
    state_dir: StateOpt = None,
) -> None:
    """Apply UPQA records as sequential edits to one user, then re-score every record on the final memory."""
    from agent.model_loading import load_model
    from consolidation.judge import TargetJudge
    from consolidation.metrics import neutral_prompts
    from eval.edit_run import run_sequential_edits
    from eval.provenance import provenance, write_report
    from eval.upqa import load_upqa
    from memory.embedder import Embedder
    from memory.weights.weight_memory import WeightMemory

    settings = settings_for(config, state_dir)
    if settings.data_dir is None:
        raise fail("no data directory: set IMPRINT_DATA_DIR to the folder with nq_open/ (locality prompts)")
    try:
        records = load_upqa(data, limit)
    except (MemoryError_, ValueError) as exc:
        raise fail(str(exc)) from None
    chosen = editors_for([editor], cluster_size, settings, overrides or [])[editor]
    loaded = load_model(settings.model, settings.model_cache_dir, settings.dtype, settings.device)
    weights = WeightMemory(settings.weights_path, loaded.model)
    try:
        report = run_sequential_edits(
            loaded.model,
            loaded.tokenizer,
            weights,
            user,
            chosen,
            records,
            TargetJudge(Embedder()),
            neutral_prompts(settings.data_dir, n=neutral),
        )
    except MemoryError_ as exc:
        raise fail(str(exc)) from None
    finally:
        weights.close()
    report["provenance"] = provenance(model=settings.model, data=data.resolve(), judge="TargetJudge")
    write_report(report, out_file)
    out.print_json(data=report["summary"])
    err.print(f"report written to {out_file}")


@app.command()
def drift(
    user: Annotated[str, typer.Option("--user", help="Whose weight memory in force is checked.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the drift report (JSON).")],
    probes: Annotated[
        str, typer.Option("--probes", help="Comma-separated: boolq,nq,ppl,locality,retention,norm.")
    ] = "boolq,nq,ppl,locality,retention,norm",
    config: ConfigOpt = None,
    state_dir: StateOpt = None,
) -> None:
    """Print and write the drift report of a user's current weight memory against the base model."""
    from agent.model_loading import load_model
    from consolidation.drift import DriftConfig, DriftGuard, retention_items
    from consolidation.judge import TargetJudge
    from eval.provenance import provenance, write_report
    from memory.embedder import Embedder
    from memory.weights.weight_memory import WeightMemory

    settings = settings_for(config, state_dir)
    if settings.data_dir is None:
        raise fail("no data directory: set IMPRINT_DATA_DIR to the folder with boolq/, nq_open/, wikitext/")
    try:
        cfg = DriftConfig(
            data_dir=settings.data_dir,
            cache_dir=settings.cache_dir / "drift",
            probes=tuple(csv_list(probes, str, "--probes")),
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    loaded = load_model(settings.model, settings.model_cache_dir, settings.dtype, settings.device)
    weights = WeightMemory(settings.weights_path, loaded.model)
    try:
        head = weights.head(user)
        lineage = weights.ledger.lineage(user, head)
        parent = weights.delta(user, lineage[-1].parent or 0) if lineage else None
        guard = DriftGuard(loaded.model, loaded.tokenizer, cfg, TargetJudge(Embedder()))
        earlier = retention_items([r for info in lineage for r in info.requests], [])
        report = guard.check(weights.delta(user), parent, earlier)
    except MemoryError_ as exc:
        raise fail(str(exc)) from None
    finally:
        weights.close()
    data = {"user": user, "version": head, **report.to_dict()}
    data["provenance"] = provenance(model=settings.model, data=settings.data_dir, judge="TargetJudge")
    write_report(data, out_file)
    out.print(report.table(), markup=False, highlight=False)
    err.print(f"report written to {out_file}")
    if not report.passed:
        raise typer.Exit(code=1)


@bench_app.command("edit")
def bench_edit(
    out_file: Annotated[Path, typer.Option("--out", help="JSON report; a Markdown table goes next to it.")],
    editors: Annotated[str, typer.Option("--editors", help="Comma-separated editors.")] = "rome,lora,ftm",
    cluster_sizes: Annotated[str, typer.Option("--cluster-sizes", help="Comma-separated, 1..9.")] = "1,3",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N records.")] = None,
    neutral: Annotated[int, typer.Option("--neutral", min=1, help="Neutral prompts for locality.")] = 50,
    stride: Annotated[int, typer.Option("--stride", min=1, help="Every K-th record (before --limit).")] = 1,
    offset: Annotated[
        int, typer.Option("--offset", min=0, help="Start at record K (0-based), then every --stride-th.")
    ] = 0,
    hold_statements: HoldStatementsOpt = False,
    overrides: SetOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Each editor at each cluster size: 100 sequential UPQA edits to one user, timed and scored."""
    from agent.model_loading import load_model
    from consolidation.editors import available_editors
    from consolidation.judge import TargetJudge
    from consolidation.metrics import neutral_prompts
    from eval.bench_edit import BenchPlan, render_table, run_edit_bench
    from eval.provenance import provenance
    from memory.embedder import Embedder

    settings = settings_for(config, None)
    if settings.data_dir is None:
        raise fail("no data directory: set IMPRINT_DATA_DIR to the folder with upqa/ and nq_open/")
    names = csv_list(editors, str, "--editors")
    unknown = [n for n in names if n not in available_editors()]
    if unknown:
        raise fail(f"unknown editors {unknown}; known editors: {available_editors()}")
    sizes = csv_list(cluster_sizes, int, "--cluster-sizes")
    if any(not 1 <= s <= 9 for s in sizes):
        raise fail(f"--cluster-sizes must lie in 1..9, got {sizes}")
    pairs = overrides or []
    editors_for(names, sizes[0], settings, pairs)  # parse before the model loads: a typo costs no time
    loaded = load_model(settings.model, settings.model_cache_dir, settings.dtype, settings.device)
    judge = TargetJudge(Embedder())
    try:
        report = run_edit_bench(
            loaded.model,
            loaded.tokenizer,
            judge,
            neutral_prompts(settings.data_dir, n=neutral),
            settings.data_dir,
            BenchPlan(names, sizes, limit, stride, pairs, offset, hold_statements),
            settings.cache_dir,
        )
    except (MemoryError_, FileNotFoundError) as exc:
        raise fail(str(exc)) from None
    report["provenance"] = provenance(model=settings.model, data=settings.data_dir, judge="TargetJudge")
    publish(report, render_table(report["rows"]), out_file)


@bench_app.command("drift")
def bench_drift(
    out_file: Annotated[Path, typer.Option("--out", help="JSON report; a Markdown table goes next to it.")],
    editor: Annotated[str, typer.Option("--editor", help="A registered editor: rome, lora, ftm.")] = "rome",
    edits: Annotated[int, typer.Option("--edits", min=1, help="Sequential edits (UPQA records).")] = 100,
    every: Annotated[int, typer.Option("--every", min=1, help="A drift report after every K edits.")] = 10,
    data: Annotated[
        Path | None, typer.Option("--data", help="UPQA-format JSON (default: the balanced subset).")
    ] = None,
    hold_statements: HoldStatementsOpt = False,
    overrides: SetOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Sequential edits to one user with a full drift report every K edits, and the time a check takes."""
    import tempfile

    from agent.model_loading import load_model
    from consolidation.drift import DriftConfig, DriftGuard
    from consolidation.judge import TargetJudge
    from eval.bench_edit import BENCH_USER, PLAIN
    from eval.drift_run import markdown, run_drift_series
    from eval.provenance import provenance
    from eval.upqa import load_upqa
    from memory.embedder import Embedder
    from memory.weights.weight_memory import WeightMemory

    settings = settings_for(config, None)
    if settings.data_dir is None:
        raise fail("no data directory: set IMPRINT_DATA_DIR to the folder with upqa/, boolq/, nq_open/")
    path = data or settings.data_dir / PLAIN
    # built before the model loads, so a typo in --set costs no time
    chosen = editors_for([editor], 1, settings, overrides or [])[editor]
    try:
        records = load_upqa(path, edits)
    except (MemoryError_, KeyError, TypeError, ValueError) as exc:
        raise fail(str(exc)) from None
    loaded = load_model(settings.model, settings.model_cache_dir, settings.dtype, settings.device)
    judge = TargetJudge(Embedder())
    cfg = DriftConfig(data_dir=settings.data_dir, cache_dir=settings.cache_dir / "drift")
    guard = DriftGuard(loaded.model, loaded.tokenizer, cfg, judge)
    with tempfile.TemporaryDirectory(prefix="imprint-drift-") as tmp:
        weights = WeightMemory(Path(tmp), loaded.model)
        try:
            result = run_drift_series(
                loaded.model,
                loaded.tokenizer,
                weights,
                BENCH_USER,
                chosen,
                records,
                guard,
                every,
                hold_statements=hold_statements,
            )
        except (MemoryError_, FileNotFoundError) as exc:
            raise fail(str(exc)) from None
        finally:
            weights.close()
    result["provenance"] = provenance(model=settings.model, data=path.resolve(), judge="TargetJudge")
    publish(result, markdown(result), out_file)


@bench_app.command("chat")
def bench_chat(
    out_file: Annotated[Path, typer.Option("--out", help="JSON report; a Markdown table goes next to it.")],
    turns: Annotated[int, typer.Option("--turns", min=3, help="Measured turn/bare pairs.")] = 20,
    new_tokens: Annotated[int, typer.Option("--new-tokens", min=1, help="Tokens each answer has.")] = 32,
    memories: Annotated[int, typer.Option("--memories", min=0, help="The user's pending memories.")] = 40,
    edits: Annotated[int, typer.Option("--edits", min=0, help="ROME edits in the user's delta.")] = 3,
    config: ConfigOpt = None,
) -> None:
    """Median latency of a chat turn with memory, recall and the user's delta against bare generation."""
    from rich.progress import Progress

    from eval.bench_chat import ChatBenchPlan, render_table, run_chat_bench
    from eval.provenance import provenance

    settings = settings_for(config, None)
    if settings.data_dir is None:
        raise fail("no data directory: set IMPRINT_DATA_DIR (UPQA preferences and ROME statistics)")
    plan = ChatBenchPlan(turns=turns, new_tokens=new_tokens, memories=memories, edits=edits)
    with Progress(console=err) as bar:
        task = bar.add_task("turn vs bare", total=turns + 1)
        report = run_chat_bench(settings, plan, lambda i, n: bar.update(task, completed=i + 1))
    report["provenance"] = provenance(model=settings.model, data=settings.data_dir, judge="none")
    publish(report, render_table(report), out_file)


@bench_app.command("recall")
def bench_recall(
    out_file: Annotated[Path, typer.Option("--out", help="JSON report; a Markdown table goes next to it.")],
    observations: Annotated[int, typer.Option("--observations", min=1)] = 100_000,
    users: Annotated[int, typer.Option("--users", min=1)] = 1_000,
    queries: Annotated[int, typer.Option("--queries", min=10)] = 500,
    config: ConfigOpt = None,
) -> None:
    """p50 and p95 of recall over a store of `observations` observations across `users` users."""
    from rich.progress import Progress

    from eval.bench_recall import RecallBenchPlan, render_table, run_recall_bench
    from eval.provenance import provenance
    from memory.embedder import Embedder

    settings = settings_for(config, None)
    if settings.data_dir is None:
        raise fail("no data directory: set IMPRINT_DATA_DIR (the UPQA files supply the texts)")
    plan = RecallBenchPlan(observations=observations, users=users, queries=queries)
    embedder = Embedder(settings.embedder_path, device=settings.device)
    with Progress(console=err) as bar:
        tasks = {
            "fill": bar.add_task("writing observations", total=observations),
            "recall": bar.add_task("recalling", total=queries),
        }
        try:
            report = run_recall_bench(
                settings.data_dir, embedder, plan, lambda k, i, n: bar.update(tasks[k], completed=i)
            )
        except FileNotFoundError as exc:
            raise fail(str(exc)) from None
    report["provenance"] = provenance(
        model="all-MiniLM-L6-v2 (embedder)", data=settings.data_dir, judge="none"
    )
    publish(report, render_table(report), out_file)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
