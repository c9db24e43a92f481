"""Peak resident memory of this process over a block of work, sampled from /proc (Linux).

`ru_maxrss` is a high-water mark for the whole process life, so it cannot tell one benchmark run from the
one before it; a sampler thread reading the current RSS can. Where /proc is missing the sampler falls back
to `ru_maxrss`, and the result says which it used.
"""

from __future__ import annotations

import os
import resource
import threading
from pathlib import Path
from types import TracebackType

_STATM = Path("/proc/self/statm")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def current_rss_bytes() -> int | None:
    """Resident set size now, or None where /proc is not available."""
    try:
        return int(_STATM.read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


class PeakMemory:
    """`with PeakMemory() as peak: ...`; then `peak.peak_mib` is the highest RSS seen inside the block."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.peak_bytes = 0
        self.source = "proc"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            rss = current_rss_bytes()
            if rss is not None:
                self.peak_bytes = max(self.peak_bytes, rss)

    def __enter__(self) -> PeakMemory:
        rss = current_rss_bytes()
        if rss is None:
            self.source = "ru_maxrss"
        else:
            self.peak_bytes = rss
            self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        rss = current_rss_bytes()
        if rss is not None:
            self.peak_bytes = max(self.peak_bytes, rss)
        else:  # process-lifetime high-water mark, in KiB on Linux
            self.peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    @property
    def peak_mib(self) -> float:
        return round(self.peak_bytes / 2**20, 1)
