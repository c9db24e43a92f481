"""A consolidation run gives back its thread's OpenMP pool, whatever kernels it ran last.

The scheduler's worker thread lives on after a run; a pool kept on it would halve the decoding speed of
every turn served afterwards (memory/openmp.py). Generation and embedding release their own pools, so
the run here ends in other kernels, as an edit's solve does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import cast

from consolidation.pipeline import Consolidator, Progress, RunResult
from consolidation.runs import DONE, RunLog
from consolidation.scheduler import ConsolidationService
from tests.openmp_threads import counts_pool_threads, leaves_no_workers, parallel_work

pytestmark = counts_pool_threads


class EndsInKernels:
    """Stands in for the consolidator: a run whose last work is a parallel torch product."""

    def run(self, user_id: str, progress: Progress | None = None) -> RunResult:
        parallel_work()
        return RunResult(user_id=user_id, started=time.time(), finished=time.time())


def test_a_run_leaves_no_openmp_workers_on_its_thread(tmp_path: Path) -> None:
    runs = RunLog(tmp_path / "runs.sqlite")
    service = ConsolidationService(cast(Consolidator, EndsInKernels()), runs, tmp_path / "locks")
    statuses: list[str] = []
    assert leaves_no_workers(lambda: statuses.append(service.run_now("someone").status))
    assert statuses and set(statuses) == {DONE}
