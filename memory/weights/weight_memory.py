"""Per-user weight memory: versioned low-rank deltas on a shared base model, applied only at forward time.

Layout under `root`: `ledger.sqlite3` (the source of truth, Invariant 3) and
`users/<user_id>/v0003.safetensors`, each file holding one version's increment. A version's full delta is
the stack of increments along its parent chain; the head says which version is in force (0 = the base model).

Commit order (Invariant 5): the increment file is written atomically first, then one SQLite transaction
records the row and moves the head. A crash in between leaves a file no row names: the version does not
exist (a version is what the ledger says) and `recover()` deletes the orphan. One writer process per root;
writes within a process are serialised by a lock.

Branching: a commit's parent is the current head, so committing after `revert(user, 1)` starts a branch from
version 1; the versions that were reverted stay recorded and can be returned to with `revert`.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import nn

from memory.errors import InvalidInput
from memory.faults import crash_point
from memory.ids import validate_user_id
from memory.weights.delta import Delta
from memory.weights.files import TEMP_PREFIX, load_delta, save_delta
from memory.weights.gate import CommitGate, CommitRejected
from memory.weights.hooks import DeltaApplier
from memory.weights.ledger import Ledger, LedgerConflict, NewVersion, VersionInfo

log = logging.getLogger(__name__)

LEDGER_FILE = "ledger.sqlite3"
USERS_DIR = "users"
_VERSION_FILE = re.compile(r"v\d{4,}\.safetensors")


def version_file_name(version: int) -> str:
    """`v0003.safetensors`: zero-padded so a directory listing sorts in version order."""
    return f"v{version:04d}.safetensors"


class WeightMemory:
    """Every user's weight memory over one base model; the model's parameters are never written."""

    def __init__(self, root: Path, model: nn.Module, gate: CommitGate | None = None) -> None:
        self.root = Path(root)
        self.gate = gate  # reviews every commit's candidate memory; None: commits are not checked
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / USERS_DIR).mkdir(exist_ok=True)
        self.ledger = Ledger(self.root / LEDGER_FILE)
        self.applier = DeltaApplier(model)
        self._lock = threading.RLock()  # serialises writes and guards the cache
        self._heads: dict[str, tuple[int, Delta]] = {}  # user → (head version, its full delta)

    # paths

    def user_dir(self, user_id: str) -> Path:
        """`root/users/<user_id>`, after checking the id cannot name anything outside it."""
        return self.root / USERS_DIR / validate_user_id(user_id)

    # reading

    def users(self) -> list[str]:
        """Users with at least one recorded version."""
        return self.ledger.users()

    def versions(self, user_id: str) -> list[VersionInfo]:
        """Every recorded version of `user_id`, oldest first, reverted ones included."""
        return self.ledger.versions(validate_user_id(user_id))

    def head(self, user_id: str) -> int:
        """The version in force for `user_id`; 0 = none (the base model)."""
        return self.ledger.head(validate_user_id(user_id))

    def delta(self, user_id: str, version: int | None = None) -> Delta:
        """The user's full memory at `version` (default: the head): its increments stacked, oldest first."""
        validate_user_id(user_id)
        if version is not None and version < 0:
            raise InvalidInput(f"version must be 0 or more, got {version}")
        with self._lock:
            head = self.ledger.head(user_id)  # read every time: another instance may have moved it
            target = head if version is None else int(version)
            cached = self._heads.get(user_id)
            if cached is not None and cached[0] == target:
                return cached[1]
            full = Delta()
            for info in self.ledger.chain(user_id, target):
                full = full.stack(load_delta(self.root / info.file))
            if target == head:
                self._heads[user_id] = (head, full)
            return full

    @contextmanager
    def applied(self, user_id: str) -> Iterator[None]:
        """Forward passes inside use `user_id`'s memory in force; a user without one gets the base model.

        Context-local (see `memory.weights.hooks`): other threads keep their own users; a worker thread
        started inside must run under `contextvars.copy_context().run(...)` to inherit it.
        """
        with self.applier.activate(self.delta(user_id)):
            yield

    # writing

    def commit(
        self,
        user_id: str,
        delta: Delta,
        *,
        editor: str,
        settings: dict[str, Any],
        requests: list[dict[str, Any]],
        metrics: dict[str, Any],
        seconds: float,
        drift: dict[str, Any] | None = None,
        whole: bool = False,
    ) -> VersionInfo:
        """Record a new version on top of the current head and put it in force.

        `delta` is an increment on the head's memory, or with `whole=True` the user's whole new memory (an
        editor that replaced earlier updates returns that). A whole memory that merely extends the head's
        (its first updates are the head's own) is stored as the increment, so files stay small either way.

        With a `gate`, the user's whole candidate memory is reviewed first and its verdict stored as the
        version's `drift`; a failing verdict raises `CommitRejected` and nothing is written. The review
        runs outside the write lock (it takes seconds); if the head moved meanwhile, `LedgerConflict`.
        """
        directory = self.user_dir(user_id)
        if delta.is_empty() and not whole:
            raise InvalidInput(f"user {user_id!r}: refusing to commit an empty delta")
        self.applier.check(delta)  # a delta that cannot apply to this model must not become a version
        reviewed_head = None
        if self.gate is not None:
            reviewed_head = self.ledger.head(user_id)
            parent_memory = self.delta(user_id)
            candidate = delta if whole else parent_memory.stack(delta)
            earlier = [r for info in self.ledger.lineage(user_id, reviewed_head) for r in info.requests]
            verdict = self.gate.review(user_id, parent_memory, candidate, earlier, requests)
            if not verdict.passed:
                log.warning("user %s: commit rejected by the gate: %s", user_id, "; ".join(verdict.reasons))
                raise CommitRejected(user_id, verdict)
            drift = verdict.to_dict()
        with self._lock:
            parent = self.ledger.head(user_id)
            if reviewed_head is not None and parent != reviewed_head:
                raise LedgerConflict(
                    f"user {user_id!r}: head moved from {reviewed_head} to {parent} during the review"
                )
            if whole:
                delta, whole = self._as_increment(user_id, delta)
                if delta.is_empty() and not whole:
                    raise InvalidInput(f"user {user_id!r}: the new memory equals the current one")
            version = self.ledger.next_version(user_id)
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / version_file_name(version)
            if path.exists():  # no row names it (the version number is free): a crash's orphan
                log.warning("replacing orphan weight file %s left by an interrupted commit", path)
            save_delta(path, delta)
            crash_point("weights:file-written")  # the file is on disk, no ledger row names it yet
            record = NewVersion(
                editor=editor,
                settings=settings,
                requests=requests,
                metrics=metrics,
                drift=drift,
                seconds=seconds,
                file=path.relative_to(self.root).as_posix(),
                whole=whole,
            )
            info = self.ledger.insert(user_id, version, parent, record)
            cached = self._heads.get(user_id)
            self._heads.pop(user_id, None)
            if whole:
                self._heads[user_id] = (version, delta)
            elif cached is not None and cached[0] == parent:  # stack onto the cached parent, no re-read
                self._heads[user_id] = (version, cached[1].stack(delta))
        log.info(
            "user %s: committed weight-memory version %d (parent %s, %s)", user_id, version, parent, editor
        )
        return info

    def _as_increment(self, user_id: str, memory: Delta) -> tuple[Delta, bool]:
        """(what to store, whether it is whole) for the user's new whole `memory`."""
        current = self.delta(user_id).updates
        head = memory.updates[: len(current)]
        if len(head) == len(current) and all(a is b for a, b in zip(head, current, strict=True)):
            return Delta(memory.updates[len(current) :]), False
        return memory, True

    def revert(self, user_id: str, version: int) -> VersionInfo | None:
        """Put `version` back in force (0 = the base model); later versions stay recorded, not in force.

        Returns the version now in force, or None after reverting to the base model.
        """
        validate_user_id(user_id)
        if not 0 <= version < 2**63:  # SQLite's INTEGER range: a larger number names no version
            raise InvalidInput(f"version must be 0 or more (and below 2**63), got {version}")
        with self._lock:
            self.ledger.set_head(user_id, version)
            self._heads.pop(user_id, None)
        log.info("user %s: weight memory reverted to version %d", user_id, version)
        return self.ledger.get(user_id, version) if version else None

    def delete_user(self, user_id: str) -> int:
        """Forget `user_id`'s weight memory: rows, files and cache. Returns how many versions went.

        Rows go first, in one transaction: a crash before the files are removed leaves only orphans, which
        `recover()` deletes, and the user is already served by the base model.
        """
        directory = self.user_dir(user_id)
        with self._lock:
            gone = self.ledger.delete_user(user_id)
            self._heads.pop(user_id, None)
            shutil.rmtree(directory, ignore_errors=True)
        log.info("user %s: deleted %d weight-memory versions", user_id, gone)
        return gone

    def close(self) -> None:
        """Release the ledger connection of the calling thread."""
        self.ledger.close()

    def recover(self) -> list[Path]:
        """Delete files no ledger row names (interrupted commits, deletions, temp files); returns them.

        Run it at start-up, before any other process commits to this root: a file written by a commit in
        flight elsewhere has no row yet and would look like an orphan.
        """
        removed: list[Path] = []
        with self._lock:
            known = self.ledger.files()
            for directory in sorted((self.root / USERS_DIR).iterdir()):
                if not directory.is_dir():
                    continue
                for path in sorted(directory.iterdir()):
                    relative = path.relative_to(self.root).as_posix()
                    is_ours = path.name.startswith(TEMP_PREFIX) or _VERSION_FILE.fullmatch(path.name)
                    if is_ours and relative not in known and path.is_file():
                        path.unlink()
                        removed.append(path)
                if not any(directory.iterdir()):
                    directory.rmdir()
        for path in removed:
            log.warning("recover: removed orphan %s", path)
        return removed
