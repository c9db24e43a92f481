"""Counting OpenMP worker threads: helpers for the tests that check a thread gives its pool back.

The pools are OS threads, so they are counted in `/proc/self/task`. Only the threads the measuring thread
started count: it runs under a name of its own (`on_long_lived_thread`), and Linux threads inherit their
creator's name, so its OpenMP workers carry that name while the hundred-odd threads that earlier tests left
behind (servers, stores, pools of their own) do not, however many of them start or end meanwhile. Python's
own threads are left out too. Threads on their way out (a finished streaming thread, pool workers told to
exit) leave the list a moment after the call that ended them returns, so a count after work waits briefly
for them to settle; a pool that is really kept never leaves, so the wait cannot hide one.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
import torch

T = TypeVar("T")
TASKS = Path("/proc/self/task")
SETTLE_SECONDS = 3.0  # how long exiting threads get to leave /proc/self/task
counts_pool_threads = pytest.mark.skipif(
    not TASKS.is_dir() or torch.get_num_threads() < 2, reason="counts Linux threads of a multi-core pool"
)


def _name(task: int | str) -> str | None:
    """The OS name of one of this process's threads, or None if it has ended."""
    try:
        return (TASKS / str(task) / "comm").read_text().strip()
    except OSError:
        return None


def threads_started_here() -> int:
    """Native threads that the calling thread started, OpenMP's workers among them: those that carry its
    OS name and that Python did not start (a progress bar's monitor comes and goes on its own). Call it on
    a thread of `on_long_lived_thread`, whose name no other thread has."""
    mine = _name(threading.get_native_id())
    python_threads = {t.native_id for t in threading.enumerate()}
    return sum(1 for task in os.listdir(TASKS) if int(task) not in python_threads and _name(task) == mine)


def settled_threads(target: int, timeout: float = SETTLE_SECONDS) -> int:
    """The OS thread count once it is down to `target`, or as it stands after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    count = threads_started_here()
    while count > target and time.monotonic() < deadline:
        time.sleep(0.02)
        count = threads_started_here()
    return count


def parallel_work() -> None:
    """A product large enough that torch runs it on every core."""
    a = torch.randn(512, 1024)
    (a @ a.T).sum()


_probes = itertools.count()


def _rename_this_thread(name: str) -> None:
    (TASKS / str(threading.get_native_id()) / "comm").write_text(name)


def on_long_lived_thread(measure: Callable[[], T]) -> T:
    """Run `measure` on a fresh, long-lived worker thread, as a server's worker would be, under an OS name
    no other thread has (at most 15 characters), so that `threads_started_here` counts what it starts."""
    with ThreadPoolExecutor(1) as worker:
        worker.submit(_rename_this_thread, f"omp-probe-{next(_probes)}").result()
        return worker.submit(measure).result()


def leaves_no_workers(work: Callable[[], object]) -> bool:
    """Whether `work`, run on a fresh long-lived thread, leaves no native threads of its own behind."""

    def measure() -> bool:
        before = threads_started_here()
        work()
        return settled_threads(before) <= before

    return on_long_lived_thread(measure)
