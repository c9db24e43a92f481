"""Hand a thread's OpenMP worker pool back once its torch work is done.

Why: torch's CPU kernels run on OpenMP, and with GNU OpenMP (what torch's Linux wheels ship) every thread
that runs a parallel region keeps its own pool of worker threads for the rest of its life. Once a second
thread holds a pool, libgomp manages more threads than the machine has cores and throttles how long idle
workers spin before they sleep; every small kernel of a decode step (a (1, 576) x (576, 1536) product
on the default model) then waits for a sleeping worker to wake, and generation runs at one-thread speed.

A service meets exactly that: turns run on the HTTP server's worker threads, streamed turns on a thread
of their own, observation on the observer's, consolidation on the scheduler's. Measured on the 2-core
machine, 32 forced tokens: 1.10 s from a single thread, 1.90 s from any thread (the first included)
once a turn had run on a second one, and 1.09-1.11 s everywhere with the pools released.

So the places that run torch work on a long-lived thread (generation, embedding, a consolidation run, an
adapter export) release their thread's pool when they finish; the next parallel region of any thread
builds a fresh one, which costs one thread start (microseconds) against a generation's second. Where the
OpenMP runtime cannot be found (another backend, another platform), this does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

OMP_PAUSE_SOFT = 1  # OpenMP 5.0's omp_pause_soft: give the threads back, keep nothing else
_RUNTIMES = ("libgomp*.so*", "libomp*.so*", "libomp*.dylib", "libiomp5*")


@functools.cache
def _pause_resource_all() -> Callable[[int], int] | None:
    """OpenMP's `omp_pause_resource_all` from the runtime torch's kernels use, or None if there is none."""
    import torch

    if "parallel backend: OpenMP" not in torch.__config__.parallel_info():
        log.debug("torch's parallel backend is not OpenMP; no pools to release")
        return None
    lib_dir = Path(torch.__file__).parent / "lib"
    candidates = [str(p) for pattern in _RUNTIMES for p in sorted(lib_dir.glob(pattern))]
    candidates.append("")  # the symbols already loaded into the process (an OpenMP runtime linked globally)
    for path in candidates:
        try:
            fn = ctypes.CDLL(path or None).omp_pause_resource_all
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
        log.debug("OpenMP pools are released through %s", path or "the process's own symbols")
        return fn  # type: ignore[no-any-return]
    log.debug("no OpenMP runtime with omp_pause_resource_all found; pools are kept")
    return None


def release_thread_pool() -> bool:
    """Give back the calling thread's OpenMP worker threads; True if a runtime took the request.

    Never call it from inside a parallel region (no Python code runs there); the runtime refuses then.
    """
    pause = _pause_resource_all()
    return pause is not None and pause(OMP_PAUSE_SOFT) == 0


@contextmanager
def pool_released_after() -> Iterator[None]:
    """Run a block of torch work, then release this thread's OpenMP pool, whether the block raised or not."""
    try:
        yield
    finally:
        release_thread_pool()
