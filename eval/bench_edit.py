"""`imprint bench edit`: every editor, at each cluster size, on the same records and neutral prompts.

Each (editor, cluster size) run gets a fresh weight store and one user, so runs never see each other's
edits; the model, judge and neutral prompts are shared, so the rows of the table compare like with like.
Cluster size 1 reads the plain UPQA file; larger sizes read its cluster9 twin (same records, 9 phrasings
each), which is where the synonym pairs come from.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consolidation.editors import editor_for
from consolidation.judge import TargetJudge
from eval.edit_run import run_sequential_edits
from eval.tables import markdown_table
from eval.upqa import every_kth, load_upqa
from memory.weights.weight_memory import WeightMemory

log = logging.getLogger(__name__)

PLAIN = Path("upqa/UPQA/balanced_subset.json")
CLUSTERED = Path("upqa/UPQA/balanced_subset_cluster9.json")
BENCH_USER = "bench-user"

COLUMNS = (  # (summary key, table header)
    ("editor", "editor"),
    ("cluster_size", "cluster"),
    ("edits", "edits"),
    ("efficacy", "efficacy (live)"),
    ("paraphrase", "paraphrase"),
    ("implicit", "implicit"),
    ("efficacy_at_edit", "efficacy at edit"),
    ("efficacy_all", "efficacy (all)"),
    ("superseded_recalled", "old value kept"),
    ("locality", "locality"),
    ("locality_kl", "KL"),
    ("flip_margins", "flips: base margin"),
    ("isolation_bit_identical", "isolated"),
    ("median_seconds_per_edit", "median s/edit"),
    ("peak_rss_mib", "peak RSS MiB"),
)


@dataclass(frozen=True)
class BenchPlan:
    """What to run: editors × cluster sizes over every `stride`-th record from record `offset`, the first
    `limit` of those (None: all), with `FIELD=VALUE` config overrides (each applied to the editors that have
    the field). `--offset 9 --stride 10` picks the last record of each subject of `balanced_subset.json`:
    the live set a 100-edit run ends with, which is all an editor that re-fits from zero keeps."""

    editors: Sequence[str]
    cluster_sizes: Sequence[int]
    limit: int | None = None
    stride: int = 1
    overrides: Sequence[str] = ()
    offset: int = 0
    hold_statements: bool = False  # each edit holds its statement as recalled (`run_sequential_edits`)


def data_file(data_dir: Path, cluster_size: int) -> Path:
    """The UPQA file a cluster size reads; a clear error if the data directory lacks it."""
    path = Path(data_dir) / (PLAIN if cluster_size == 1 else CLUSTERED)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; set IMPRINT_DATA_DIR to the folder that has upqa/")
    return path


def run_edit_bench(
    model: Any,
    tokenizer: Any,
    judge: TargetJudge,
    neutral: Sequence[str],
    data_dir: Path,
    plan: BenchPlan,
    cache_dir: Path,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the plan; returns {"rows": [summary per run], "runs": [full report per run]}."""
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for name in plan.editors:
        for size in plan.cluster_sizes:
            path = data_file(data_dir, size)
            records = every_kth(load_upqa(path), plan.offset, plan.stride, plan.limit)
            editor = editor_for(name, size, data_dir, cache_dir, plan.overrides)
            log.info("bench: %s, cluster size %d, %d records", name, size, len(records))
            with tempfile.TemporaryDirectory(prefix="imprint-bench-") as tmp:
                weights = WeightMemory(Path(tmp) / "weights", model)
                try:
                    report = run_sequential_edits(
                        model,
                        tokenizer,
                        weights,
                        BENCH_USER,
                        editor,
                        records,
                        judge,
                        neutral,
                        progress,
                        plan.hold_statements,
                    )
                finally:
                    weights.close()
            report["summary"]["cluster_size"] = size
            report["summary"]["hold_statements"] = plan.hold_statements
            report["summary"]["data"] = str(path)
            rows.append(report["summary"])
            runs.append(report)
    return {"rows": rows, "runs": runs}


def render_table(rows: Sequence[dict[str, Any]]) -> str:
    """The summary rows as a Markdown table, one row per (editor, cluster size)."""
    rows = [{**row, "flip_margins": _flip_margins(row.get("locality_flips"))} for row in rows]
    return markdown_table([h for _, h in COLUMNS], [[row.get(k) for k, _ in COLUMNS] for row in rows])


def _flip_margins(flips: Sequence[dict[str, Any]] | None) -> str | None:
    """The base model's top-two margins (nats) at the neutral prompts whose next token changed: near-ties
    read 0.0x, real damage a nat or more."""
    if flips is None:  # a report written before flips were recorded
        return None
    margins = sorted(f["base_margin"] for f in flips)
    return ", ".join(f"{m:.3f}" for m in margins) or "none"
