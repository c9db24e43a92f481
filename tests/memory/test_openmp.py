"""OpenMP pools: a thread that ran torch's parallel kernels gives its worker threads back when released.

The pools are OS threads, so the tests count the process's threads (`/proc/self/task`, less Python's own)
around the work, on a thread of their own as a server's worker would be. A kept pool is what halves
decoding speed once a second thread runs the model (memory/openmp.py); `imprint bench chat` times it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from agent.llm import ChatLM, GenerationConfig
from memory.embedder import Embedder
from memory.openmp import pool_released_after, release_thread_pool

TASKS = Path("/proc/self/task")
MESSAGES = [{"role": "user", "content": "Name three colours."}]
counts_pool_threads = pytest.mark.skipif(
    not TASKS.is_dir() or torch.get_num_threads() < 2, reason="counts Linux threads of a multi-core pool"
)
pytestmark = counts_pool_threads


def os_threads() -> int:
    """Threads of the process that Python did not start (OpenMP's workers among them): Python's own
    threads (a progress bar's monitor, a test server's) come and go on their own."""
    python_threads = {t.native_id for t in threading.enumerate()}
    return sum(1 for task in os.listdir(TASKS) if int(task) not in python_threads)


def parallel_work() -> None:
    """A product large enough that torch runs it on every core."""
    a = torch.randn(512, 1024)
    (a @ a.T).sum()


def threads_during_and_after(work: Callable[[], object], *, release: bool) -> tuple[int, int, int]:
    """OS threads before, right after and after releasing, all counted on one long-lived worker thread."""

    def measure() -> tuple[int, int, int]:
        before = os_threads()
        work()
        during = os_threads()
        if release:
            release_thread_pool()
        return before, during, os_threads()

    with ThreadPoolExecutor(1) as worker:
        worker.submit(lambda: None).result()  # the worker thread itself is counted in `before`
        return worker.submit(measure).result()


def leaves_no_workers(work: Callable[[], object], attempts: int = 3) -> bool:
    """Whether `work`, run on a fresh long-lived thread, leaves no new native threads behind.

    Threads that earlier tests left running (an observer finishing its queue) may start or end a pool
    while one attempt counts, so up to `attempts` fresh threads try; a pool the work really keeps shows
    in every one of them, since each attempt's thread is new.
    """
    for _ in range(attempts):
        before, after, _ = threads_during_and_after(work, release=False)
        if after == before:
            return True
    return False


def test_a_thread_keeps_its_pool_until_released_and_gives_it_back_when_released() -> None:
    before, during, kept = threads_during_and_after(parallel_work, release=False)
    assert during > before  # the parallel region started worker threads for this thread
    assert kept == during  # and, unreleased, they stay for the thread's life

    before, during, after = threads_during_and_after(parallel_work, release=True)
    assert during > before
    assert after == before


def test_the_runtime_takes_the_request_on_this_platform() -> None:
    """On Linux wheels torch ships GNU OpenMP, which implements omp_pause_resource_all."""
    assert release_thread_pool() is True


def test_the_block_releases_even_when_it_raises() -> None:
    def failing() -> None:
        with pool_released_after():
            parallel_work()
            raise ValueError("the work failed")

    def measure() -> tuple[int, int]:
        before = os_threads()
        with pytest.raises(ValueError, match="the work failed"):
            failing()
        return before, os_threads()

    with ThreadPoolExecutor(1) as worker:
        worker.submit(lambda: None).result()
        before, after = worker.submit(measure).result()
    assert after == before


@pytest.mark.slow
def test_a_generated_turn_leaves_no_workers_on_its_thread(lm: ChatLM) -> None:
    cfg = GenerationConfig(max_new_tokens=4)
    lm.generate(MESSAGES, cfg)  # process-wide pools started once (the tokenizer's) are not the subject
    assert leaves_no_workers(lambda: lm.generate(MESSAGES, cfg))
    assert leaves_no_workers(lambda: list(lm.stream(MESSAGES, cfg)))


@pytest.mark.slow
def test_embedding_leaves_no_workers_on_its_thread(embedder: Embedder) -> None:
    texts = [f"I like walking in the hills near town number {i}." for i in range(64)]
    embedder.embed(texts)  # as above
    assert leaves_no_workers(lambda: embedder.embed(texts))
