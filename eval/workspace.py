"""The memories of an evaluation run: one user per item, in a real chromadb store and a real weight memory.

Why per-item users: each benchmark item is one person's preference, and imprint keeps people apart (their
observations, their weight deltas); an item's memories then never leak into another item's answers, exactly
as in service. Why on disk under the run's folder: a resumed run finds every observation and edit it made
before and repeats none of them (an edit costs seconds).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from consolidation.editors.base import Editor, EditRequest
from memory.chroma import make_client
from memory.embedder import Embedder
from memory.extraction import CueExtractor
from memory.history import History
from memory.observations import Observation
from memory.recall import RecallConfig, Recaller, format_memory_line
from memory.store import ObservationStore
from memory.weights.delta import Delta
from memory.weights.weight_memory import WeightMemory

log = logging.getLogger(__name__)


class Workspace:
    """Retrieval and weight memory for the users of one evaluation run, kept under `root`."""

    def __init__(
        self,
        root: Path,
        model: Any,
        tokenizer: Any,
        embedder: Embedder,
        editors: Mapping[str, Editor],
        recall: RecallConfig | None = None,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.model = model
        self.tokenizer = tokenizer
        self.editors = dict(editors)
        self._history = History(root / "history.sqlite")
        self.store = ObservationStore(make_client(path=root / "chroma"), embedder, self._history)
        self.extractor = CueExtractor(embedder)
        self.recaller = Recaller(self.store, recall or RecallConfig())
        self.weights = WeightMemory(root / "weights", model)

    # retrieval --------------------------------------------------------------------------------------------

    def observe(self, user_id: str, user_turns: Sequence[str]) -> int:
        """Extract and store the preferences in `user_turns` once per user, as the agent's observe node does;
        returns how many observations the user has (0: the extractor found nothing to remember)."""
        stored = self.store.list(user_id)
        if stored:
            return len(stored)
        found = self.extractor.extract_many(list(user_turns))
        observations = [
            Observation.from_candidate(user_id, cand, thread_id="eval", turn=turn)
            for turn, candidates in enumerate(found)
            for cand in candidates
        ]
        if observations:
            self.store.add_many(observations)
        return len(observations)

    def recalled_lines(self, user_id: str, message: str) -> list[str]:
        """The memory lines the agent would put into the system prompt for `message`."""
        hits = self.recaller.recall(user_id, message, self._count_tokens)
        return [format_memory_line(h.observation) for h in hits]

    def _count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # weights ----------------------------------------------------------------------------------------------

    def edit(self, user_id: str, editor_name: str, request: EditRequest, provenance: dict[str, Any]) -> float:
        """Write `request` into `user_id`'s weights with the named editor, once; returns the seconds the edit
        took (read back from the ledger when an earlier run made it).

        The edit is the user's whole memory as the service writes it (`Editor.compute_memory` onto an empty
        memory, what consolidation does for a user's first fact), not the editor's bare increment
        (`compute_delta`): ROME's memory also pins the contexts it fitted in and the tokens around the
        subject, and holds everyday questions if configured, so only this way is `hybrid` imprint as it
        runs and every editor setting in the folder's plan acts on its answers."""
        done = self.weights.versions(user_id)
        if done:
            return float(done[-1].seconds)
        editor = self.editors[editor_name]
        started = time.perf_counter()
        delta = editor.compute_memory(self.model, self.tokenizer, [request], Delta())
        took = time.perf_counter() - started
        self.weights.commit(
            user_id,
            delta,
            editor=editor.name,
            settings=editor.settings(),
            requests=[provenance],
            metrics={},
            seconds=took,
        )
        return took

    @contextmanager
    def applied(self, user_id: str | None) -> Iterator[None]:
        """Forward passes inside see `user_id`'s weight memory; None: the base model."""
        with self.weights.applied(user_id) if user_id else nullcontext():
            yield

    def close(self) -> None:
        self.weights.close()
        self._history.close()
