"""`imprint eval ...`: measurements on the data directory that write results files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli_common import ConfigOpt, HoldStatementsOpt, SetOpt, csv_list, editors_for, fail, settings_for
from api.console import err, out
from api.settings import Settings
from eval.errors import JudgeEndpointError
from eval.run_dir import editors_plan, edits_plan, extraction_plan, fingerprint
from memory.errors import MemoryError_

if TYPE_CHECKING:  # the heavy modules load inside the commands, so `imprint --help` stays fast
    from consolidation.editors.base import Editor
    from consolidation.judge import AnswerJudge, TargetJudge
    from eval.endpoint_judge import ChatEndpoint
    from eval.itemlog import ItemLog
    from eval.methods import Method
    from eval.preference_judge import PreferenceJudge, PreferenceJudging
    from eval.workspace import Workspace
    from memory.embedder import Embedder

JudgeUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--judge-url",
        envvar="IMPRINT_JUDGE_URL",
        help="OpenAI-compatible API base (http://host:port/v1) whose model judges instead of the local "
        "judge; its key is read from IMPRINT_JUDGE_API_KEY.",
    ),
]
JudgeModelOpt = Annotated[
    str | None,
    typer.Option("--judge-model", envvar="IMPRINT_JUDGE_MODEL", help="The judge endpoint's model name."),
]

eval_app = typer.Typer(help="Measure imprint's components on the data directory.", no_args_is_help=True)


@eval_app.command("extraction")
def eval_extraction(
    prefeval_dir: Annotated[
        Path, typer.Option("--prefeval-dir", help="PrefEval folder (has implicit_preference/).")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the JSON report.")],
    limit: Annotated[
        int | None, typer.Option("--limit", help="Only the first N conversations per file.")
    ] = None,
    upqa: Annotated[
        list[Path] | None,
        typer.Option(
            "--upqa",
            help="A UPQA-format file whose statements (input_attribute) are extracted too; repeatable.",
        ),
    ] = None,
) -> None:
    """Recall of implicit preferences on PrefEval persona conversations; false positives on filler turns;
    with --upqa, how many UPQA statements become observations and name their target."""
    from consolidation.judge import TargetJudge
    from eval.extraction import evaluate_extraction
    from eval.extraction_upqa import evaluate_upqa_statements
    from eval.provenance import provenance, write_report
    from memory.embedder import Embedder
    from memory.extraction import CueExtractor

    if not (prefeval_dir / "implicit_preference" / "persona-driven").is_dir():
        raise fail(
            f"{prefeval_dir} has no implicit_preference/persona-driven/ folder; pass PrefEval's folder"
        )
    missing = [str(p) for p in upqa or [] if not p.is_file()]
    if missing:
        raise fail(f"no UPQA file at {', '.join(missing)}")
    embedder = Embedder()
    extractor = CueExtractor(embedder)
    report = evaluate_extraction(extractor, embedder, prefeval_dir, limit=limit)
    try:
        judge = TargetJudge(embedder)
        report["upqa"] = {
            path.name: evaluate_upqa_statements(extractor, judge, path, limit=limit) for path in upqa or []
        }
    except MemoryError_ as exc:
        raise fail(str(exc)) from None
    report["provenance"] = provenance(
        data=prefeval_dir.resolve(), embedder=embedder.model_path, matcher="MiniLM cosine >= match_threshold"
    )
    write_report(report, out_file)
    out.print_json(data={k: v for k, v in report.items() if not isinstance(v, list | dict)})
    for name, part in report.get("upqa", {}).items():
        err.print(
            f"UPQA {name}: {part.get('stored_count', 0)} of {part['statements']} statements stored, "
            f"{part.get('value_names_target_count', 0)} name their target"
        )
    err.print(f"report written to {out_file}")


@eval_app.command("judge")
def eval_judge(
    labels: Annotated[Path, typer.Option("--labels", help="Hand-labelled answers, JSON lines.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the JSON report.")],
    folds: Annotated[int, typer.Option("--folds", min=2, help="Folds for cross-validated agreement.")] = 5,
) -> None:
    """Calibrate the target judge's embedding threshold on hand labels; report its agreement."""
    from consolidation.judge import TargetJudge
    from eval.judge_agreement import agreement_report, load_labels
    from eval.provenance import provenance, write_report
    from memory.embedder import Embedder

    try:
        items = load_labels(labels)
    except MemoryError_ as exc:
        raise fail(str(exc)) from None
    embedder = Embedder()
    report = agreement_report(TargetJudge(embedder), items, folds=folds)
    report["provenance"] = provenance(
        data=labels.resolve(), embedder=embedder.model_path, judge="TargetJudge"
    )
    write_report(report, out_file)
    out.print_json(data={k: v for k, v in report.items() if not isinstance(v, list | dict)})
    err.print(f"report written to {out_file}")


def _methods(text: str, settings: Settings) -> list[Method]:
    from consolidation.editors import available_editors
    from eval.methods import parse_methods

    try:
        return parse_methods(text, settings.consolidation_editor, available_editors())
    except ValueError as exc:
        raise fail(f"--methods: {exc}") from None


def _editors(
    methods: list[Method], cluster_size: int, settings: Settings, overrides: Sequence[str] = ()
) -> dict[str, Editor]:
    """One editor per editor the methods name, its config changed by the `--set` pairs naming its fields."""
    return editors_for(sorted({m.editor for m in methods if m.editor}), cluster_size, settings, overrides)


def _open(out_dir: Path, fixed: dict[str, Any], log_name: str = "items.jsonl") -> ItemLog:
    from eval.itemlog import ItemLog
    from eval.run_dir import open_run

    try:
        open_run(out_dir, fixed)
        return ItemLog(out_dir / log_name)
    except ValueError as exc:
        raise fail(str(exc)) from None


@eval_app.command("upqa")
def eval_upqa(
    data: Annotated[Path, typer.Option("--data", help="UPQA-format JSON (plain or cluster9).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Results folder; a rerun into it resumes.")],
    methods: Annotated[
        str,
        typer.Option(
            "--methods", help="Comma-separated: none,prompt,rag,edit:rome,edit:lora,edit:ftm,hybrid"
        ),
    ] = "none,prompt,rag,edit:rome,hybrid",
    cluster_size: Annotated[int, typer.Option("--cluster-size", min=1, max=9)] = 1,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most N records (after --offset and --stride).")
    ] = None,
    stride: Annotated[int, typer.Option("--stride", min=1, help="Every K-th record (before --limit).")] = 1,
    offset: Annotated[
        int, typer.Option("--offset", min=0, help="Start at record K (0-based), then every --stride-th.")
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Torch seed (decoding is greedy; editors sample).")] = 0,
    judge_url: JudgeUrlOpt = None,
    judge_model: JudgeModelOpt = None,
    hold_statements: HoldStatementsOpt = False,
    overrides: SetOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Efficacy, paraphrase, implicit and product-recommendation accuracy per method on UPQA records.

    `--set` changes the editors' settings, which are part of the folder's plan like the cluster size. Which
    records run is not: a folder grows by record, and its summary covers the records of the latest run."""
    import torch
    from tqdm import tqdm

    from eval.provenance import provenance
    from eval.upqa import every_kth, load_upqa
    from eval.upqa_eval import HELD_IN_UPQA, UpqaPlan, publish_upqa, run_upqa

    settings = settings_for(config)
    chosen = _methods(methods, settings)
    endpoint = _endpoint(judge_url, judge_model)
    editors = _editors(chosen, cluster_size, settings, overrides or [])
    try:
        records = every_kth(load_upqa(data), offset, stride, limit)
    except (MemoryError_, ValueError, TypeError) as exc:
        raise fail(str(exc)) from None
    if not records:
        raise fail(f"no record at offset {offset} in {data}; nothing to evaluate")
    fixed = {
        "benchmark": "upqa",
        "data": fingerprint(data),
        "cluster_size": cluster_size,
        "model": settings.model,
        "editors": editors_plan(editors, one_edit_each=True),
        **extraction_plan(chosen),
        **edits_plan(chosen, holds=HELD_IN_UPQA if hold_statements else None),
    }
    items = _open(out_dir, {**fixed, **_judge_plan(endpoint)})
    torch.manual_seed(seed)
    workspace, local_judge = _workspace(settings, out_dir, editors)
    judge: AnswerJudge = local_judge if endpoint is None else _endpoint_answer_judge(endpoint)
    plan = UpqaPlan(chosen, cluster_size, hold_statements=hold_statements)
    todo = sum(not items.has(f"{m.name}|{r.index}") for m in chosen for r in records)
    try:
        with tqdm(total=todo, desc="upqa", unit="item") as bar:
            run_upqa(workspace, judge, records, plan, items, bar.update)
    except (MemoryError_, JudgeEndpointError) as exc:
        raise fail(str(exc)) from None
    finally:
        workspace.close()
        if endpoint is not None:
            endpoint.close()
    prov = provenance(model=settings.model, data=data.resolve(), judge=judge.describe(), seed=seed)
    table = publish_upqa(out_dir, list(items.rows()), chosen, records, prov)
    out.print(table, markup=False, highlight=False)
    err.print(f"results in {out_dir}: items.jsonl, summary.json, summary.md, upqa.png")


def _endpoint(url: str | None, model: str | None) -> ChatEndpoint | None:
    """The configured judge endpoint, checked with one request; None for the local judges."""
    import os

    from eval.endpoint_judge import API_KEY_ENV, ChatEndpoint, EndpointConfig

    if url is None and model is None:
        return None
    if url is None or model is None:
        raise fail("an endpoint judge needs both --judge-url and --judge-model")
    endpoint = ChatEndpoint(EndpointConfig(url=url, model=model, api_key=os.environ.get(API_KEY_ENV)))
    try:
        endpoint.check()
    except JudgeEndpointError as exc:
        endpoint.close()
        raise fail(f"the judge endpoint is not usable: {exc}") from None
    return endpoint


def _judge_plan(endpoint: ChatEndpoint | None) -> dict[str, Any]:
    """What a results folder records of its judge: nothing for the local one (folders made before endpoint
    judges existed resume as they were), the model's name for an endpoint (its URL may move)."""
    return {} if endpoint is None else {"judge": {"endpoint_model": endpoint.config.model}}


def _endpoint_answer_judge(endpoint: ChatEndpoint) -> AnswerJudge:
    """The endpoint judging whether an answer holds a target (UPQA)."""
    from eval.endpoint_judge import EndpointTargetJudge

    return EndpointTargetJudge(endpoint)


def _endpoint_preference_judge(endpoint: ChatEndpoint) -> PreferenceJudging:
    """The endpoint judging acknowledgment and violation (PrefEval)."""
    from eval.endpoint_judge import EndpointPreferenceJudge

    return EndpointPreferenceJudge(endpoint)


def _workspace(
    settings: Settings, out_dir: Path, editors: dict[str, Editor]
) -> tuple[Workspace, TargetJudge]:
    """The model, embedder and judge, and the run's workspace under `out_dir/state`."""
    from api.runtime import recall_config
    from eval.workspace import Workspace

    model, tokenizer, embedder, judge = _model_and_judge(settings)
    workspace = Workspace(out_dir / "state", model, tokenizer, embedder, editors, recall_config(settings))
    return workspace, judge


def _model_and_judge(settings: Settings) -> tuple[Any, Any, Embedder, TargetJudge]:
    """The language model, its tokenizer, the embedder, and the local judge on that embedder."""
    from agent.model_loading import load_model
    from consolidation.judge import TargetJudge
    from memory.embedder import Embedder

    loaded = load_model(settings.model, settings.model_cache_dir, settings.dtype, settings.device)
    embedder = Embedder(settings.embedder_path, device=settings.device)
    return loaded.model, loaded.tokenizer, embedder, TargetJudge(embedder)


@eval_app.command("prefeval")
def eval_prefeval(
    data_dir: Annotated[
        Path, typer.Option("--data-dir", help="PrefEval's folder (explicit_preference/...).")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Results folder; a rerun into it resumes.")],
    turns: Annotated[str, typer.Option("--turns", help="Filler turns before the question.")] = "0,2,4,6,8,10",
    methods: Annotated[
        str, typer.Option("--methods", help="Comma-separated: none,prompt,rag,edit:NAME,hybrid[:NAME].")
    ] = "none,prompt,rag,edit:rome,hybrid",
    sets: Annotated[
        str, typer.Option("--sets", help="explicit, choice, persona.")
    ] = "explicit,choice,persona",
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Only the first N items.")] = None,
    pro: Annotated[
        Path | None, typer.Option("--pro", help="PrefEval-Pro records (edit subject/target per preference).")
    ] = None,
    filler_chars: Annotated[int, typer.Option("--filler-chars", min=50, help="Cut filler messages.")] = 600,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    judge_url: JudgeUrlOpt = None,
    judge_model: JudgeModelOpt = None,
    overrides: SetOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Acknowledgment and violation rates per filler-turn count, set and method (PrefEval protocol).

    `--set` changes the editors' settings, which are part of the folder's plan."""
    import torch
    from tqdm import tqdm

    from eval.prefeval_data import PRO_FILE, filler_turns, load_items
    from eval.prefeval_eval import PrefEvalPlan, publish_prefeval, run_prefeval
    from eval.provenance import provenance

    settings = settings_for(config)
    chosen = _methods(methods, settings)
    endpoint = _endpoint(judge_url, judge_model)
    counts = sorted(set(csv_list(turns, int, "--turns")))
    if counts[0] < 0:
        raise fail(f"--turns must be 0 or more, got {counts}")
    set_names = csv_list(sets, str, "--sets")
    pro_file = pro or (settings.data_dir / PRO_FILE if settings.data_dir else None)
    if pro_file is None:
        raise fail("no PrefEval-Pro file: pass --pro or set IMPRINT_DATA_DIR")
    editors = _editors(chosen, 1, settings, overrides or [])
    try:
        items = load_items(data_dir, pro_file, set_names, limit)
        fillers = {k: filler_turns(data_dir, k, filler_chars) for k in counts}
    except (MemoryError_, ValueError, TypeError) as exc:
        raise fail(str(exc)) from None
    fixed = {
        "benchmark": "prefeval",
        "data": fingerprint(data_dir),
        "pro": fingerprint(pro_file),
        "filler_chars": filler_chars,
        "history_turns": settings.history_turns,
        "model": settings.model,
        "editors": editors_plan(editors, one_edit_each=True),
        **extraction_plan(chosen),
        **edits_plan(chosen),
    }
    log_ = _open(out_dir, {**fixed, **_judge_plan(endpoint)})
    plan = PrefEvalPlan(chosen, set_names, counts, settings.history_turns)
    torch.manual_seed(seed)
    workspace, target_judge = _workspace(settings, out_dir, editors)
    judge = _preference_judge(target_judge) if endpoint is None else _endpoint_preference_judge(endpoint)
    todo = sum(
        not log_.has(f"{m.name}|{s}|{it.index}|{k}")
        for m in chosen
        for it in items
        for s in set_names
        if s in it.reveals
        for k in counts
    )
    try:
        with tqdm(total=todo, desc="prefeval", unit="answer") as bar:
            run_prefeval(workspace, judge, items, fillers, plan, log_, bar.update)
    except (MemoryError_, JudgeEndpointError) as exc:
        raise fail(str(exc)) from None
    finally:
        workspace.close()
        if endpoint is not None:
            endpoint.close()
    prov = provenance(model=settings.model, data=data_dir.resolve(), judge=judge.describe(), seed=seed)
    text = publish_prefeval(out_dir, list(log_.rows()), plan, items, judge, prov)
    out.print(text, markup=False, highlight=False)
    err.print(f"results in {out_dir}: items.jsonl, summary.json, summary.md, prefeval_*.png")


def _preference_judge(target_judge: TargetJudge) -> PreferenceJudge:
    from eval.preference_judge import PreferenceJudge

    if target_judge.embedder is None:
        raise fail("the preference judge needs the embedder")
    return PreferenceJudge(target_judge.embedder)


@eval_app.command("stability")
def eval_stability(
    out_dir: Annotated[Path, typer.Option("--out", help="Results folder; a rerun into it resumes.")],
    editors: Annotated[str, typer.Option("--editors", help="Comma-separated editors.")] = "rome",
    data: Annotated[
        Path | None,
        typer.Option("--data", help="UPQA-format JSON (default: the 100-record balanced subset)."),
    ] = None,
    edits: Annotated[
        int, typer.Option("--edits", min=1, help="Sequential edits (records, in file order).")
    ] = 100,
    every: Annotated[int, typer.Option("--every", min=1, help="Re-score everything every K edits.")] = 10,
    probe_items: Annotated[
        int | None, typer.Option("--probe-items", min=1, help="BoolQ and NQ items per check (default 200).")
    ] = None,
    overrides: SetOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Retention, paraphrase, BoolQ, NQ, perplexity, locality, norm and conditioning as edits accumulate.

    `--set` changes the editors' settings; they are part of the folder's plan, so a series is only ever
    extended with the settings it was started with."""
    from dataclasses import replace

    from tqdm import tqdm

    from consolidation.drift import DriftConfig, DriftGuard
    from eval.bench_edit import PLAIN
    from eval.drift_run import base_summary
    from eval.provenance import provenance
    from eval.stability import StabilityPlan, publish_stability, run_stability
    from eval.upqa import load_upqa
    from memory.weights.weight_memory import WeightMemory

    settings = settings_for(config)
    if settings.data_dir is None:
        raise fail("no data directory: set IMPRINT_DATA_DIR to the folder with upqa/, boolq/, nq_open/")
    path = data or settings.data_dir / PLAIN
    names = csv_list(editors, str, "--editors")
    chosen = _methods(",".join(f"edit:{n}" for n in names), settings)
    try:
        records = load_upqa(path, edits)
        if len(records) < edits:
            raise ValueError(f"{path} has {len(records)} records, {edits} edits asked; pass a larger --data")
        by_name = _editors(chosen, 1, settings, overrides or [])
    except (MemoryError_, ValueError, TypeError) as exc:
        raise fail(str(exc)) from None
    drift = DriftConfig(data_dir=settings.data_dir, cache_dir=settings.cache_dir / "drift")
    if probe_items:
        drift = replace(drift, boolq_items=probe_items, nq_items=probe_items)
    fixed = {
        "benchmark": "stability",
        "data": fingerprint(path),
        "every": every,
        "model": settings.model,
        "probe_items": [drift.boolq_items, drift.nq_items],
        "editors": editors_plan(by_name),
    }
    rows = _open(out_dir, fixed, "rows.jsonl")
    model, tokenizer, _, judge = _model_and_judge(settings)  # each editor gets its own weight store below
    guard = DriftGuard(model, tokenizer, drift, judge)
    plan = StabilityPlan(edits, every)
    try:
        for name, editor in by_name.items():
            weights = WeightMemory(out_dir / "state" / f"stability-{name}", model)
            try:
                with tqdm(total=edits, desc=f"{name} edits", unit="edit") as bar:
                    run_stability(
                        model,
                        tokenizer,
                        weights,
                        editor,
                        records,
                        guard,
                        judge,
                        plan,
                        rows,
                        bar.update,
                    )
            finally:
                weights.close()
    except (MemoryError_, ValueError) as exc:
        raise fail(str(exc)) from None
    prov = provenance(model=settings.model, data=path.resolve(), judge=judge.describe())
    text = publish_stability(out_dir, list(rows.rows()), list(by_name), plan, base_summary(guard), prov)
    out.print(text, markup=False, highlight=False)
    err.print(f"results in {out_dir}: rows.jsonl, summary.json, summary.md, stability.png")


@eval_app.command("prefeval-judge")
def eval_prefeval_judge(
    labels: Annotated[Path, typer.Option("--labels", help="Hand-labelled PrefEval answers, JSON lines.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the JSON report.")],
    folds: Annotated[int, typer.Option("--folds", min=2, help="Folds for cross-validated agreement.")] = 5,
) -> None:
    """Fit the PrefEval judge's acknowledgment and violation thresholds on hand labels; report agreement."""
    from eval.preference_agreement import load_pref_labels, preference_agreement_report
    from eval.preference_judge import PreferenceJudge
    from eval.provenance import provenance, write_report
    from memory.embedder import Embedder

    try:
        items = load_pref_labels(labels)
    except MemoryError_ as exc:
        raise fail(str(exc)) from None
    embedder = Embedder()
    report = preference_agreement_report(PreferenceJudge(embedder), items, folds=folds)
    report["provenance"] = provenance(
        data=labels.resolve(), embedder=embedder.model_path, judge="PreferenceJudge"
    )
    write_report(report, out_file)
    out.print_json(data={k: v for k, v in report.items() if k != "disagreements"})
    err.print(f"report written to {out_file}")
