"""OpenMP pools: a thread that ran torch's parallel kernels gives its worker threads back when released.

The pools are OS threads, so the tests count the threads the measuring thread started (`/proc/self/task`,
by the name they inherit from it; tests/openmp_threads.py) around the work, on a thread of their own as a
server's worker would be. A kept pool is what halves decoding speed once a second thread runs the model
(memory/openmp.py); `imprint bench chat` times it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agent.llm import ChatLM, GenerationConfig
from memory.embedder import Embedder
from memory.openmp import pool_released_after, release_thread_pool
from tests.openmp_threads import (
    counts_pool_threads,
    leaves_no_workers,
    on_long_lived_thread,
    parallel_work,
    settled_threads,
    threads_started_here,
)

MESSAGES = [{"role": "user", "content": "Name three colours."}]
pytestmark = counts_pool_threads


def threads_during_and_after(work: Callable[[], object], *, release: bool) -> tuple[int, int, int]:
    """OS threads before, right after and once settled (after releasing, if asked), all counted on one
    long-lived worker thread; a kept pool still shows after the settling wait."""

    def measure() -> tuple[int, int, int]:
        before = threads_started_here()
        work()
        during = threads_started_here()
        if release:
            release_thread_pool()
        return before, during, settled_threads(before)

    return on_long_lived_thread(measure)


def test_a_thread_keeps_its_pool_until_released_and_gives_it_back_when_released() -> None:
    before, during, kept = threads_during_and_after(parallel_work, release=False)
    assert during > before  # the parallel region started worker threads for this thread
    assert kept == during  # and, unreleased, they stay for the thread's life: waiting hides no pool

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
        before = threads_started_here()
        with pytest.raises(ValueError, match="the work failed"):
            failing()
        return before, settled_threads(before)

    before, after = on_long_lived_thread(measure)
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
