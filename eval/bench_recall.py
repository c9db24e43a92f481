"""`imprint bench recall`: recall latency over a large observation store.

Fills a fresh embedded chromadb store with `observations` observations spread over `users` users (texts
built from the UPQA preference pairs in the data directory, so they read like real preferences), then
times `Recaller.recall` (query embedding, per-user similarity search, ranking, de-duplication, token
budget) for random (user, question) pairs. The store is the one `imprint serve` uses by default.
"""

from __future__ import annotations

import logging
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memory.chroma import make_client
from memory.embedder import Embedder
from memory.history import History
from memory.observations import Observation, Polarity
from memory.recall import RecallConfig, Recaller
from memory.store import ObservationStore

log = logging.getLogger(__name__)

UPQA_FILES = ("upqa/UPQA/UPQA_800.json", "upqa/UPQA/balanced_subset_200.json")
BATCH = 2_000  # observations per add_many: one embedding batch, one chroma call, one history transaction


@dataclass(frozen=True)
class RecallBenchPlan:
    observations: int = 100_000
    users: int = 1_000
    queries: int = 500
    seed: int = 0


def _pairs(data_dir: Path) -> list[tuple[str, str, str]]:
    """(aspect, value, question) triples from the UPQA files present."""
    import json

    triples: list[tuple[str, str, str]] = []
    for name in UPQA_FILES:
        path = data_dir / name
        if path.is_file():
            for r in json.loads(path.read_text()):
                target = r["target"][0] if isinstance(r["target"], list) else r["target"]
                question = r["question"][0] if isinstance(r["question"], list) else r["question"]
                triples.append((str(r["attribute_type"]), str(target), str(question)))
    if not triples:
        raise FileNotFoundError(f"no UPQA file under {data_dir}: looked for {UPQA_FILES}")
    return triples


def fill_store(
    store: ObservationStore,
    plan: RecallBenchPlan,
    triples: list[tuple[str, str, str]],
    tick: Callable[[int], None],
) -> float:
    """Write the observations; returns seconds taken."""
    rng = random.Random(plan.seed)
    start = time.perf_counter()
    made = 0
    while made < plan.observations:
        batch = []
        for i in range(made, min(made + BATCH, plan.observations)):
            aspect, value, _ = rng.choice(triples)
            polarity = Polarity.LIKES if rng.random() < 0.8 else Polarity.AVOIDS
            verb = "love" if polarity is Polarity.LIKES else "can't stand"
            batch.append(
                Observation(
                    user_id=f"user-{i % plan.users:05d}",
                    evidence=f"Honestly, I {verb} {value}.",
                    aspect=aspect,
                    value=value,
                    polarity=polarity,
                    confidence=round(rng.uniform(0.4, 0.95), 2),
                    thread_id=f"t{rng.randrange(20)}",
                    created_at=time.time() - rng.uniform(0, 90 * 86400),
                )
            )
        store.add_many(batch)
        made += len(batch)
        tick(len(batch))
    return time.perf_counter() - start


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_recall_bench(
    data_dir: Path,
    embedder: Embedder,
    plan: RecallBenchPlan,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Fill a fresh store, then time recalls; latencies in milliseconds."""
    triples = _pairs(data_dir)
    done = {"n": 0}

    def tick(n: int) -> None:
        done["n"] += n
        if progress is not None:
            progress("fill", done["n"], plan.observations)

    with tempfile.TemporaryDirectory(prefix="imprint-bench-recall-") as tmp:
        history = History(Path(tmp) / "history.sqlite")
        client = make_client(path=Path(tmp) / "chroma")
        store = ObservationStore(client, embedder, history)
        try:
            fill_seconds = fill_store(store, plan, triples, tick)
            start = (
                time.perf_counter()
            )  # a restarted service opens the full store: it checks every row's history
            store = ObservationStore(client, embedder, history)
            open_seconds = time.perf_counter() - start
            recaller = Recaller(store, RecallConfig())
            rng = random.Random(plan.seed + 1)
            for _ in range(10):  # warm-up: first queries load the index
                recaller.recall("user-00000", rng.choice(triples)[2])
            totals: list[float] = []
            searches: list[float] = []
            hits: list[int] = []
            for i in range(plan.queries):
                user = f"user-{rng.randrange(plan.users):05d}"
                question = rng.choice(triples)[2]
                start = time.perf_counter()
                recalled = recaller.recall(user, question)
                totals.append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                store.search(user, question, k=recaller.config.k)
                searches.append((time.perf_counter() - start) * 1000)
                hits.append(len(recalled))
                if progress is not None:
                    progress("recall", i + 1, plan.queries)
        finally:
            history.close()
    return {
        "plan": plan.__dict__,
        "fill_seconds": round(fill_seconds, 1),
        "observations_per_second": round(plan.observations / fill_seconds, 1),
        "open_seconds": round(open_seconds, 2),
        "recall_p50_ms": round(statistics.median(totals), 2),
        "recall_p95_ms": round(_pct(totals, 0.95), 2),
        "recall_max_ms": round(max(totals), 2),
        "search_p50_ms": round(statistics.median(searches), 2),
        "search_p95_ms": round(_pct(searches, 0.95), 2),
        "median_recalled": statistics.median(hits),
    }


def render_table(report: dict[str, Any]) -> str:
    p = report["plan"]
    return "\n".join(
        [
            "| observations | users | queries | recall p50 ms | recall p95 ms (target ≤ 50) | search p50 ms "
            "| search p95 ms | fill obs/s | reopen s |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {p['observations']} | {p['users']} | {p['queries']} | {report['recall_p50_ms']:.1f} "
            f"| {report['recall_p95_ms']:.1f} | {report['search_p50_ms']:.1f} "
            f"| {report['search_p95_ms']:.1f} | {report['observations_per_second']:.0f} "
            f"| {report['open_seconds']:.2f} |",
        ]
    )
