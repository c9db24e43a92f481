"""The observation store: users' observations in one chromadb collection, their change history in SQLite.

Isolation: every read filters on `user_id` inside chromadb (`where`), and every read by id checks the owner
again, so no call returns another user's record; someone else's id looks exactly like a missing one.

Ordering of writes: chromadb first, then the history entry. A crash between the two leaves a record without
its last history line, never a history line for a change that did not happen.

Finding a user's rows: the history doubles as the index of which records a user has (`History.live_records`),
and search fetches those rows by id. A record whose creation entry was lost to a crash between the two writes
would be invisible to search, so opening the store first records a `created` entry for any such row.
"""

from __future__ import annotations

import builtins
import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from memory.chroma import open_collection
from memory.embedder import Embedder
from memory.errors import InvalidInput, NotFound
from memory.history import Event, History, HistoryEntry
from memory.ids import validate_record_id, validate_text, validate_user_id
from memory.observations import Hit, Observation, Polarity, Status

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

log = logging.getLogger(__name__)

MAX_EVIDENCE_CHARS = 2000  # a user turn or two; longer means the extractor did not cut out the sentence
MAX_FIELD_CHARS = 300  # aspect and value are short phrases
MAX_THREAD_ID_CHARS = 256
PAGE = 500  # rows per chromadb `get` when scanning, so a large collection never comes back in one payload
ID_PAGE = 10_000  # ids alone are small: larger pages when only ids are read
# a user with at most this many observations is searched exactly: their ids from the history's index, their
# rows by id, and a dot product. At 100,000 observations chroma's filtered index query took ~90 ms, its
# metadata `get` by user ~23 ms and a `get` by 100 ids ~8 ms (see `imprint bench recall`).
EXACT_SEARCH_ROWS = 4096
CONFIDENCE_DIGITS = 6  # finer than any extractor means; short decimals survive the server's float parsing

StatusFilter = Status | Sequence[Status] | None


def document_of(obs: Observation) -> str:
    """The text that is embedded: the normalised summary, then the user's own words.

    Why both: the summary ("hotel atmosphere: avoids nightlife") is what recall queries resemble, while the
    evidence ("I get seasick easily") carries what the summary lost; embedding both finds a record by either.
    The summary comes first because MiniLM weighs the start of a text most and truncates long inputs.
    """
    return f"{obs.summary()}. {obs.evidence}"


def _micros(unix_time: float) -> int:
    """Whole microseconds since the epoch.

    Why not the float: the chroma server (Rust, serde_json without float_roundtrip) may parse a float one ulp
    off, so a `created_at` read back over HTTP would differ from the one written. Integers travel exactly, and
    `validate_observation` rounds `created_at` to microseconds, so what `add` returns equals what `get` reads.
    """
    return round(unix_time * 1_000_000)


def _metadata(obs: Observation) -> dict[str, Any]:
    """Every field as a chroma scalar (str, int, float, bool); enums by value."""
    return {
        "user_id": obs.user_id,
        "evidence": obs.evidence,
        "aspect": obs.aspect,
        "value": obs.value,
        "polarity": obs.polarity.value,
        "confidence": float(obs.confidence),
        "thread_id": obs.thread_id,
        "turn": int(obs.turn),
        "explicit": bool(obs.explicit),
        "status": obs.status.value,
        "created_at_us": _micros(obs.created_at),
    }


def _observation(obs_id: str, meta: dict[str, Any]) -> Observation:
    return Observation(
        id=obs_id,
        user_id=str(meta["user_id"]),
        evidence=str(meta["evidence"]),
        aspect=str(meta["aspect"]),
        value=str(meta["value"]),
        polarity=Polarity(meta["polarity"]),
        confidence=float(meta["confidence"]),
        thread_id=str(meta.get("thread_id", "")),
        turn=int(meta.get("turn", -1)),
        explicit=bool(meta.get("explicit", False)),
        status=Status(meta["status"]),
        created_at=int(meta["created_at_us"]) / 1e6,
    )


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (stored embeddings are unit vectors already; this guards other writers)."""
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _statuses(status: StatusFilter) -> list[Status] | None:
    """Normalise a status filter to a list (None means any status); reject things that are not statuses."""
    if status is None:
        return None
    items = [status] if isinstance(status, str | Status) else list(status)
    try:
        return [Status(s) for s in items]
    except ValueError as err:
        raise InvalidInput(f"bad status filter {status!r}; use one of {[s.value for s in Status]}") from err


def _where(user_id: str, status: StatusFilter) -> dict[str, Any]:
    statuses = _statuses(status)
    if statuses is None:
        return {"user_id": user_id}
    return {"$and": [{"user_id": user_id}, {"status": {"$in": [s.value for s in statuses]}}]}


def _check_confidence(confidence: object) -> float:
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not math.isfinite(confidence)
    ):
        raise InvalidInput(f"confidence {confidence!r} must be a finite number in [0, 1]")
    if not 0.0 <= confidence <= 1.0:
        raise InvalidInput(f"confidence {confidence!r} is outside [0, 1]")
    return round(float(confidence), CONFIDENCE_DIGITS)


def validate_observation(obs: Observation) -> Observation:
    """Check every field of `obs` before anything is written; returns a copy with enums coerced."""
    validate_user_id(obs.user_id)
    validate_record_id(obs.id, "observation id")
    validate_text(obs.evidence, MAX_EVIDENCE_CHARS, "evidence")
    validate_text(obs.aspect, MAX_FIELD_CHARS, "aspect")
    validate_text(obs.value, MAX_FIELD_CHARS, "value")
    if not isinstance(obs.thread_id, str) or len(obs.thread_id) > MAX_THREAD_ID_CHARS:
        raise InvalidInput(
            f"thread id {obs.thread_id!r} must be a string of at most {MAX_THREAD_ID_CHARS} chars"
        )
    if isinstance(obs.turn, bool) or not isinstance(obs.turn, int):
        raise InvalidInput(f"turn {obs.turn!r} must be an integer")
    try:
        polarity, status = Polarity(obs.polarity), Status(obs.status)
    except ValueError as err:
        raise InvalidInput(f"observation {obs.id!r}: {err}") from err
    if not isinstance(obs.created_at, int | float) or not math.isfinite(obs.created_at):
        raise InvalidInput(f"created_at {obs.created_at!r} must be a unix time")
    return replace(
        obs,
        polarity=polarity,
        status=status,
        confidence=_check_confidence(obs.confidence),
        explicit=bool(obs.explicit),
        created_at=_micros(obs.created_at) / 1e6,
    )


class ObservationStore:
    """Per-user observations with semantic search, status changes and an audit trail."""

    def __init__(
        self, client: ClientAPI, embedder: Embedder, history: History, collection: str = "observations"
    ) -> None:
        self._embedder = embedder
        self._history = history
        self._col = open_collection(client, embedder, collection)
        self._record_unrecorded()

    def _record_unrecorded(self) -> None:
        """Give every row without history its `created` entry (the module docstring says when that occurs)."""
        ids: builtins.list[str] = []
        offset = 0
        while True:
            page = self._col.get(include=[], limit=ID_PAGE, offset=offset)["ids"]
            ids.extend(page)
            if len(page) < ID_PAGE:
                break
            offset += ID_PAGE
        missing = sorted(set(ids) - self._history.recorded(ids))
        if not missing:
            return
        got = self._col.get(ids=missing, include=["metadatas"])  # type: ignore[list-item]
        found = [_observation(i, dict(m)) for i, m in zip(got["ids"], got["metadatas"] or [], strict=True)]
        reason = "recorded on open: the write that created it stopped before its history entry"
        self._history.record_many((o.id, o.user_id, Event.CREATED, None, o.to_dict(), reason) for o in found)
        log.warning("recorded the missing creation entry of %d observations", len(found))

    # -- writes ---------------------------------------------------------------------------------------------

    def add(self, obs: Observation) -> Observation:
        """Store a new observation; its id must not be in use (by this user or any other)."""
        return self.add_many([obs])[0]

    def add_many(self, observations: Sequence[Observation]) -> builtins.list[Observation]:
        """Store several observations in one chromadb call and one history transaction; all or nothing."""
        checked = [validate_observation(o) for o in observations]
        if not checked:
            return []
        ids = [o.id for o in checked]
        if len(set(ids)) != len(ids):
            raise InvalidInput(f"observation ids repeat within one add_many call: {sorted(ids)}")
        taken = self._col.get(ids=ids, include=[])["ids"]
        if taken:  # chromadb would silently ignore them; say so instead
            raise InvalidInput(
                f"observation ids already in use: {sorted(taken)}; leave id unset for a fresh one"
            )
        self._col.add(
            ids=ids,
            embeddings=self._embedder.embed([document_of(o) for o in checked]),  # type: ignore[arg-type]
            documents=[document_of(o) for o in checked],
            metadatas=[_metadata(o) for o in checked],  # type: ignore[arg-type]
        )
        self._history.record_many((o.id, o.user_id, Event.CREATED, None, o.to_dict(), "") for o in checked)
        log.debug("added %d observations", len(checked))
        return checked

    def set_status(self, user_id: str, obs_id: str, status: Status, reason: str = "") -> Observation:
        """Move an observation through its lifecycle (e.g. pending → in_weights); no re-embedding needed."""
        old = self.get(user_id, obs_id)  # validates the ids and the owner first
        try:
            new = replace(old, status=Status(status))
        except ValueError as err:
            raise InvalidInput(f"bad status {status!r}; use one of {[s.value for s in Status]}") from err
        self._col.update(ids=[obs_id], metadatas=[_metadata(new)])  # type: ignore[list-item]
        self._history.record(obs_id, user_id, Event.STATUS, old.to_dict(), new.to_dict(), str(reason))
        return new

    def update(
        self,
        user_id: str,
        obs_id: str,
        *,
        evidence: str | None = None,
        aspect: str | None = None,
        value: str | None = None,
        polarity: Polarity | str | None = None,
        confidence: float | None = None,
        reason: str = "",
    ) -> Observation:
        """Change the content of an observation and re-embed it; fields left as None keep their value."""
        old = self.get(user_id, obs_id)
        changes: dict[str, Any] = {
            k: v
            for k, v in {
                "evidence": evidence,
                "aspect": aspect,
                "value": value,
                "polarity": polarity,
                "confidence": confidence,
            }.items()
            if v is not None
        }
        new = validate_observation(replace(old, **changes))
        if new == old:
            return old
        self._col.update(
            ids=[obs_id],
            embeddings=self._embedder.embed([document_of(new)]),  # type: ignore[arg-type]
            documents=[document_of(new)],
            metadatas=[_metadata(new)],  # type: ignore[list-item]
        )
        self._history.record(obs_id, user_id, Event.UPDATED, old.to_dict(), new.to_dict(), str(reason))
        return new

    def delete(self, user_id: str, obs_id: str, reason: str = "") -> None:
        """Remove an observation; its history stays so an auditor can still see what it said."""
        old = self.get(user_id, obs_id)
        self._col.delete(ids=[obs_id])
        self._history.record(obs_id, user_id, Event.DELETED, old.to_dict(), None, str(reason))

    def delete_user(self, user_id: str, reason: str = "") -> int:
        """Remove every observation of a user; returns how many went. History entries are kept."""
        gone = self.list(user_id)
        if gone:
            self._col.delete(ids=[o.id for o in gone])
            self._history.record_many((o.id, user_id, Event.DELETED, o.to_dict(), None, reason) for o in gone)
        log.info("deleted %d observations of user %s", len(gone), user_id)
        return len(gone)

    def forget_user(self, user_id: str) -> tuple[int, int]:
        """Remove a user's observations and erase their history too: (observations, history entries).

        `delete_user` keeps the audit trail; this is for a user who asked to be forgotten.
        """
        validate_user_id(user_id)
        gone = self.delete_user(user_id, reason="user forgotten")
        return gone, self._history.delete_user(user_id)

    # -- reads ----------------------------------------------------------------------------------------------

    def owner(self, obs_id: str) -> str | None:
        """The user an observation belongs (or, if deleted, belonged) to; None for an id never stored.

        For routes that name a record without its user (as Mem0's do): the caller checks the owner is
        within its tenant before reading the record as that user. Read from the history alone, so the
        record itself is fetched from chromadb once, by the read that follows.
        """
        validate_record_id(obs_id, "observation id")
        return self._history.owner(obs_id)  # indexed; every stored row has its creation entry

    def get(self, user_id: str, obs_id: str) -> Observation:
        """One observation of `user_id`; NotFound if absent or owned by someone else (indistinguishable)."""
        validate_user_id(user_id)
        validate_record_id(obs_id, "observation id")
        got = self._col.get(ids=[obs_id], where={"user_id": user_id}, include=["metadatas"])  # type: ignore[list-item]
        if not got["ids"] or not got["metadatas"]:
            raise NotFound(f"no observation {obs_id!r} for user {user_id!r}")
        obs = _observation(got["ids"][0], dict(got["metadatas"][0]))
        if obs.user_id != user_id:  # belt and braces: the where filter already excludes it
            raise NotFound(f"no observation {obs_id!r} for user {user_id!r}")
        return obs

    def list(self, user_id: str, status: StatusFilter = None) -> builtins.list[Observation]:
        """All observations of a user, optionally of some statuses, oldest first."""
        validate_user_id(user_id)
        found = [o for o in self._scan(_where(user_id, status)) if o.user_id == user_id]
        return sorted(found, key=lambda o: (o.created_at, o.id))

    def search(
        self, user_id: str, query: str, k: int = 5, status: StatusFilter = None
    ) -> builtins.list[tuple[Observation, float]]:
        """The `k` observations of a user most similar to `query`, best first, with cosine similarity."""
        return [(h.observation, h.similarity) for h in self.nearest(user_id, query, k, status)]

    def nearest(
        self, user_id: str, query: str, k: int = 5, status: StatusFilter = None
    ) -> builtins.list[Hit]:
        """Like `search`, with each hit's stored embedding (for callers that compare hits with each other)."""
        validate_user_id(user_id)
        validate_text(query, MAX_EVIDENCE_CHARS, "query")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InvalidInput(f"k {k!r} must be a positive integer")
        wanted = _statuses(status)
        ids = self._history.live_records(user_id)
        if len(ids) > EXACT_SEARCH_ROWS:
            return self._index_search(user_id, query, k, status)
        if not ids:
            return []
        rows = self._col.get(ids=ids, include=["metadatas", "embeddings"])  # type: ignore[list-item]
        metas = rows["metadatas"] or []
        keep = [
            i
            for i, meta in enumerate(metas)
            if meta.get("user_id") == user_id and (wanted is None or meta.get("status") in wanted)
        ]
        if not keep:
            return []
        vectors = _unit(np.asarray(rows["embeddings"], dtype=np.float32)[keep])
        sims = vectors @ self._embedder.embed([query])[0]
        best = np.argsort(-sims, kind="stable")[:k]
        return [
            Hit(_observation(rows["ids"][keep[j]], dict(metas[keep[j]])), float(sims[j]), vectors[j])
            for j in best
        ]

    def _index_search(self, user_id: str, query: str, k: int, status: StatusFilter) -> builtins.list[Hit]:
        """Search through chroma's index: for a user with more rows than `EXACT_SEARCH_ROWS`."""
        res = self._col.query(
            query_embeddings=self._embedder.embed([query]),  # type: ignore[arg-type]
            n_results=k,
            where=_where(user_id, status),  # type: ignore[arg-type]
            include=["metadatas", "distances", "embeddings"],  # type: ignore[list-item]
        )
        ids, metas, dists = res["ids"][0], (res["metadatas"] or [[]])[0], (res["distances"] or [[]])[0]
        vectors = _unit(np.asarray((res["embeddings"] or [[]])[0], dtype=np.float32).reshape(len(ids), -1))
        hits = [
            Hit(_observation(i, dict(m)), 1.0 - float(d), v)
            for i, m, d, v in zip(ids, metas, dists, vectors, strict=True)
        ]
        return sorted([h for h in hits if h.observation.user_id == user_id], key=lambda h: -h.similarity)

    def count(self, user_id: str, status: StatusFilter = None) -> int:
        """How many observations a user has, optionally of some statuses."""
        return len(self.list(user_id, status))

    def users(self) -> builtins.list[str]:
        """Every user with at least one observation, sorted."""
        return sorted({o.user_id for o in self._scan(None)})

    def history(self, user_id: str, obs_id: str) -> builtins.list[HistoryEntry]:
        """Every change of one of the user's observations, oldest first, including after deletion."""
        validate_user_id(user_id)
        validate_record_id(obs_id, "observation id")
        entries = self._history.entries(user_id, obs_id)
        if not entries:
            raise NotFound(f"no history for observation {obs_id!r} of user {user_id!r}")
        return entries

    def _scan(self, where: dict[str, Any] | None) -> builtins.list[Observation]:
        """Every matching record, fetched a page at a time."""
        out: builtins.list[Observation] = []
        offset = 0
        while True:
            page = self._col.get(where=where, include=["metadatas"], limit=PAGE, offset=offset)  # type: ignore[list-item]
            metas = page["metadatas"] or []
            out.extend(_observation(i, dict(m)) for i, m in zip(page["ids"], metas, strict=True))
            if len(page["ids"]) < PAGE:
                return out
            offset += PAGE
