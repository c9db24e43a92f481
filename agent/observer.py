"""The `observe` step: extract preferences from a user turn and store them, off the reply's critical path.

Why a background worker: the user is waiting for the reply, not for extraction and embedding. One worker
thread keeps writes in turn order; `flush()` waits for them (the CLI calls it before exiting, tests before
asserting). A failure is logged with the turn it came from and never breaks the conversation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from memory.observations import Candidate, Observation

log = logging.getLogger(__name__)


class Extractor(Protocol):
    def extract(self, text: str) -> list[Candidate]: ...


class ObservationSink(Protocol):
    def add_many(self, observations: Sequence[Observation]) -> list[Observation]: ...


class Observer:
    """Runs extraction + storage for user turns on one background thread."""

    def __init__(self, extractor: Extractor, store: ObservationSink, background: bool = True) -> None:
        self.extractor = extractor
        self.store = store
        self.background = background
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imprint-observe")
        self._pending: list[Future[list[Observation]]] = []
        self._lock = threading.Lock()

    def observe_now(self, user_id: str, thread_id: str, turn: int, text: str) -> list[Observation]:
        """Extract and store synchronously; returns the stored observations."""
        candidates = self.extractor.extract(text)
        observations = [Observation.from_candidate(user_id, c, thread_id, turn) for c in candidates]
        if observations:
            self.store.add_many(observations)
            log.debug(
                "user %s thread %s turn %d: %d observation(s)", user_id, thread_id, turn, len(observations)
            )
        return observations

    def _safe(self, user_id: str, thread_id: str, turn: int, text: str) -> list[Observation]:
        try:
            return self.observe_now(user_id, thread_id, turn, text)
        except Exception:
            log.exception("observing user %s thread %s turn %d failed", user_id, thread_id, turn)
            return []

    def submit(self, user_id: str, thread_id: str, turn: int, text: str) -> None:
        """Schedule extraction of one user turn (or run it now when background is off)."""
        if not self.background:
            self._safe(user_id, thread_id, turn, text)
            return
        fut = self._pool.submit(self._safe, user_id, thread_id, turn, text)
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()] + [fut]

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every submitted turn has been observed."""
        with self._lock:
            pending = list(self._pending)
        for fut in pending:
            fut.result(timeout=timeout)

    def close(self) -> None:
        self.flush()
        self._pool.shutdown(wait=True)
