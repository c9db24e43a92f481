"""ObservationStore against real chromadb: embedded on disk, and a `chroma run` server over HTTP."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from chromadb.api.client import SharedSystemClient

from memory.chroma import make_client
from memory.embedder import Embedder
from memory.errors import InvalidInput, NotFound
from memory.history import Event, History
from memory.observations import Observation, Polarity, Status
from memory.store import ObservationStore, document_of

BACKENDS = ["embedded", pytest.param("server", marks=pytest.mark.server)]
BAD_IDS = ["../x", "", "a\x00b", "a/b", "a" * 200]

Factory = Callable[[], ObservationStore]


@pytest.fixture(params=BACKENDS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path, embedder: Embedder) -> Iterator[Factory]:
    """Opens a store; each call uses a fresh client on the same data, as a restarted service would."""
    collection = f"obs-{uuid.uuid4().hex[:12]}"  # the server is shared by the session: one per test
    url = request.getfixturevalue("chroma_server") if request.param == "server" else None
    histories: list[History] = []

    def factory() -> ObservationStore:
        SharedSystemClient.clear_system_cache()  # otherwise chromadb hands back the cached client
        client = make_client(url=url) if url else make_client(path=tmp_path / "chroma")
        histories.append(History(tmp_path / "history.sqlite"))
        return ObservationStore(client, embedder, histories[-1], collection=collection)

    yield factory
    for history in histories:
        history.close()


@pytest.fixture
def store(open_store: Factory) -> ObservationStore:
    return open_store()


def make_obs(user: str, **fields: object) -> Observation:
    """An observation of `user` with test defaults; `fields` override any of them."""
    values: dict = {"polarity": Polarity.LIKES, "confidence": 0.7, **fields}
    return Observation(user_id=user, **values)


def seasick(user: str = "alice", **kw: object) -> Observation:
    base = {"aspect": "travel by sea", "value": "boat trips and cruises", "evidence": "I get seasick easily."}
    return make_obs(user, **{**base, "polarity": Polarity.AVOIDS, **kw})


def vegan(user: str = "alice", **kw: object) -> Observation:
    base = {
        "aspect": "food",
        "value": "vegan meals",
        "evidence": "My kids are vegan, so we cook without meat.",
    }
    return make_obs(user, **{**base, **kw})


def quiet_hotel(user: str = "alice", **kw: object) -> Observation:
    base = {
        "aspect": "hotel atmosphere",
        "value": "quiet, no nightlife",
        "evidence": "I want to sleep early on holiday.",
    }
    return make_obs(user, **{**base, **kw})


def history_rows(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "history.sqlite") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM history").fetchone()[0])


def test_add_then_get_round_trips_every_field(store: ObservationStore) -> None:
    # a float that the chroma server's JSON parsing once read back one ulp off
    obs = seasick(thread_id="t-1", turn=3, explicit=True, confidence=0.9, created_at=1795436353.2264159)
    stored = store.add(obs)
    assert stored.created_at == pytest.approx(obs.created_at, abs=1e-6)
    got = store.get("alice", obs.id)
    assert got == stored
    assert got == store.list("alice")[0] == store.search("alice", "boats", k=1)[0][0]
    assert isinstance(got.polarity, Polarity) and isinstance(got.status, Status)


def test_add_refuses_an_id_in_use(store: ObservationStore) -> None:
    first = store.add(seasick())
    with pytest.raises(InvalidInput, match="already in use"):
        store.add(vegan(user="bob", id=first.id))
    assert store.get("alice", first.id) == first
    assert store.users() == ["alice"]


def test_add_many_is_all_or_nothing(store: ObservationStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="evidence"):
        store.add_many([seasick(), vegan(evidence="   ")])
    assert store.count("alice") == 0
    assert history_rows(tmp_path) == 0


def test_list_is_oldest_first_and_filters_status(store: ObservationStore) -> None:
    a, b, c = vegan(created_at=300.0), seasick(created_at=100.0), quiet_hotel(created_at=200.0)
    store.add_many([a, b, c])
    assert [o.id for o in store.list("alice")] == [b.id, c.id, a.id]
    store.set_status("alice", c.id, Status.IN_WEIGHTS)
    assert [o.id for o in store.list("alice", Status.PENDING)] == [b.id, a.id]
    assert [o.id for o in store.list("alice", [Status.IN_WEIGHTS, Status.REJECTED])] == [c.id]
    assert store.count("alice") == 3
    assert store.count("alice", Status.IN_WEIGHTS) == 1
    assert store.count("nobody") == 0


def test_search_ranks_by_meaning(store: ObservationStore) -> None:
    store.add_many([seasick(), vegan(), quiet_hotel()])
    hits = store.search("alice", "should I book a ferry crossing?", k=3)
    assert len(hits) == 3
    assert hits[0][0].aspect == "travel by sea"
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= s <= 1.0 for s in scores)
    assert len(store.search("alice", "dinner recipes", k=1)) == 1
    assert store.search("alice", "dinner recipes", k=1)[0][0].aspect == "food"


def test_search_status_filter(store: ObservationStore) -> None:
    sea = store.add(seasick())
    store.add(vegan())
    store.set_status("alice", sea.id, Status.IN_WEIGHTS)
    pending = store.search("alice", "ferry crossing", k=5, status=Status.PENDING)
    assert [o.aspect for o, _ in pending] == ["food"]
    assert store.search("alice", "ferry crossing", k=5, status=[Status.IN_WEIGHTS])[0][0].id == sea.id


def test_search_rejects_bad_arguments(store: ObservationStore) -> None:
    for bad_k in (0, -1, True):
        with pytest.raises(InvalidInput, match="k"):
            store.search("alice", "x", k=bad_k)
    with pytest.raises(InvalidInput, match="query"):
        store.search("alice", "  ")
    with pytest.raises(InvalidInput, match="status"):
        store.search("alice", "x", status="forgotten")  # type: ignore[arg-type]


def test_set_status_records_history_with_reason(store: ObservationStore) -> None:
    obs = store.add(seasick())
    new = store.set_status("alice", obs.id, Status.REJECTED, reason="drift guard: BoolQ -3.1 pts")
    assert new.status is Status.REJECTED
    assert store.get("alice", obs.id).status is Status.REJECTED
    events = store.history("alice", obs.id)
    assert [e.event for e in events] == [Event.CREATED, Event.STATUS]
    assert events[1].reason == "drift guard: BoolQ -3.1 pts"
    assert events[1].old is not None and events[1].old["status"] == "pending"
    assert events[1].new is not None and events[1].new["status"] == "rejected"
    with pytest.raises(InvalidInput, match="bad status"):
        store.set_status("alice", obs.id, "forgotten")  # type: ignore[arg-type]
    assert len(store.history("alice", obs.id)) == 2


def test_update_re_embeds_and_records_history(store: ObservationStore) -> None:
    obs = store.add(seasick())
    store.add(quiet_hotel())
    new = store.update(
        "alice",
        obs.id,
        aspect="food",
        value="spicy curries",
        evidence="I love a really hot vindaloo.",
        polarity=Polarity.LIKES,
        confidence=0.95,
    )
    assert store.get("alice", obs.id) == new
    assert (new.aspect, new.polarity, new.confidence) == ("food", Polarity.LIKES, 0.95)
    assert new.created_at == obs.created_at
    assert store.search("alice", "Indian restaurant with hot dishes", k=1)[0][0].id == obs.id
    last = store.history("alice", obs.id)[-1]
    assert last.event is Event.UPDATED
    assert last.old is not None and last.old["aspect"] == "travel by sea"
    assert last.new is not None and last.new["value"] == "spicy curries"
    with pytest.raises(InvalidInput, match="confidence"):
        store.update("alice", obs.id, confidence=1.5)
    with pytest.raises(InvalidInput, match="value"):
        store.update("alice", obs.id, value="")
    assert store.get("alice", obs.id) == new


def test_delete_keeps_history(store: ObservationStore) -> None:
    obs = store.add(seasick())
    store.delete("alice", obs.id, reason="user asked")
    with pytest.raises(NotFound):
        store.get("alice", obs.id)
    with pytest.raises(NotFound):
        store.delete("alice", obs.id)
    events = store.history("alice", obs.id)
    assert [e.event for e in events] == [Event.CREATED, Event.DELETED]
    assert events[-1].old is not None and events[-1].old["evidence"] == "I get seasick easily."
    assert events[-1].new is None and events[-1].reason == "user asked"


def test_delete_user_removes_only_that_user(store: ObservationStore) -> None:
    a_ids = [o.id for o in store.add_many([seasick(), vegan()])]
    b = store.add(quiet_hotel(user="bob"))
    assert store.users() == ["alice", "bob"]
    assert store.delete_user("alice") == 2
    assert store.delete_user("alice") == 0
    assert store.users() == ["bob"]
    assert store.get("bob", b.id) == b
    assert store.history("alice", a_ids[0])[-1].event is Event.DELETED


def test_users_never_see_each_other(store: ObservationStore) -> None:
    a = store.add(seasick(user="alice"))
    b = store.add(vegan(user="bob"))
    assert [o.id for o in store.list("bob")] == [b.id]
    assert [o.id for o, _ in store.search("bob", "ferry crossing, seasickness", k=10)] == [b.id]
    assert store.search("carol", "ferry crossing", k=10) == []
    assert store.list("carol") == []
    with pytest.raises(NotFound):
        store.get("bob", a.id)
    with pytest.raises(NotFound):
        store.set_status("bob", a.id, Status.REJECTED)
    with pytest.raises(NotFound):
        store.update("bob", a.id, value="cruises")
    with pytest.raises(NotFound):
        store.delete("bob", a.id)
    with pytest.raises(NotFound):
        store.history("bob", a.id)
    assert store.get("alice", a.id) == a
    assert len(store.history("alice", a.id)) == 1


def test_persists_across_a_new_client(open_store: Factory) -> None:
    first = open_store()
    obs = first.add(seasick())
    first.set_status("alice", obs.id, Status.IN_WEIGHTS, reason="consolidated")
    second = open_store()
    got = second.get("alice", obs.id)
    assert got.status is Status.IN_WEIGHTS and got.evidence == obs.evidence
    assert second.search("alice", "boat trip", k=1)[0][0].id == obs.id
    assert [e.event for e in second.history("alice", obs.id)] == [Event.CREATED, Event.STATUS]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_user_ids_are_refused_and_nothing_is_written(
    store: ObservationStore, tmp_path: Path, bad: str
) -> None:
    with pytest.raises(InvalidInput):
        store.add(seasick(user=bad))
    with pytest.raises(InvalidInput):
        store.add(seasick(id=bad))
    with pytest.raises(InvalidInput):
        store.add_many([vegan(), seasick(user=bad)])
    for call in (
        lambda: store.get(bad, "abc"),
        lambda: store.get("alice", bad),
        lambda: store.list(bad),
        lambda: store.search(bad, "boats"),
        lambda: store.count(bad),
        lambda: store.set_status(bad, "abc", Status.REJECTED),
        lambda: store.update("alice", bad, value="x"),
        lambda: store.delete(bad, "abc"),
        lambda: store.delete_user(bad),
        lambda: store.history(bad, "abc"),
    ):
        with pytest.raises(InvalidInput):
            call()
    assert store.users() == []
    assert history_rows(tmp_path) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"evidence": ""},
        {"aspect": " "},
        {"value": "x" * 301},
        {"confidence": -0.1},
        {"confidence": float("nan")},
        {"polarity": "adores"},
        {"thread_id": "t" * 300},
    ],
)
def test_bad_fields_are_refused(store: ObservationStore, change: dict) -> None:
    with pytest.raises(InvalidInput):
        store.add(seasick(**change))
    assert store.users() == []


def test_nearest_carries_unit_stored_vectors(store: ObservationStore, embedder: Embedder) -> None:
    stored = store.add_many([seasick(), vegan(), quiet_hotel()])
    hits = store.nearest("alice", "ferry crossing", k=3)
    assert [h.observation.id for h in hits] == [o.id for o, _ in store.search("alice", "ferry crossing", k=3)]
    by_id = {o.id: o for o in stored}
    for hit in hits:
        expected = embedder.embed([document_of(by_id[hit.observation.id])])[0]
        assert np.allclose(hit.vector, expected, atol=1e-5)
        assert hit.similarity == pytest.approx(
            float(hit.vector @ embedder.embed(["ferry crossing"])[0]), abs=1e-5
        )


def test_the_index_path_agrees_with_the_exact_path(
    store: ObservationStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add_many([seasick(), vegan(), quiet_hotel(), seasick(user="bob")])
    exact = store.nearest("alice", "boat trip", k=3, status=Status.PENDING)
    monkeypatch.setattr("memory.store.EXACT_SEARCH_ROWS", 1)  # alice's 3 rows now take chroma's index
    indexed = store.nearest("alice", "boat trip", k=3, status=Status.PENDING)
    assert [h.observation.id for h in indexed] == [h.observation.id for h in exact]
    assert [h.similarity for h in indexed] == pytest.approx([h.similarity for h in exact], abs=1e-4)
    assert all(np.allclose(a.vector, b.vector, atol=1e-5) for a, b in zip(indexed, exact, strict=True))


def test_an_id_deleted_and_stored_again_is_found(store: ObservationStore) -> None:
    first = store.add(seasick())
    store.delete("alice", first.id)
    assert store.search("alice", "boat trip") == []
    again = store.add(vegan(id=first.id))
    assert [o.id for o, _ in store.search("alice", "family dinner")] == [again.id]


def test_a_row_whose_creation_entry_was_lost_is_recorded_on_open(open_store: Factory, tmp_path: Path) -> None:
    first = open_store()
    kept, lost = first.add_many([vegan(), seasick()])
    with sqlite3.connect(tmp_path / "history.sqlite") as conn:  # as if killed between chroma and history
        conn.execute("DELETE FROM history WHERE record_id = ?", (lost.id,))
    assert [o.id for o, _ in first.search("alice", "boat trip", k=5)] == [kept.id]  # invisible to search
    second = open_store()
    assert lost.id in [o.id for o, _ in second.search("alice", "boat trip", k=5)]
    (entry,) = second.history("alice", lost.id)
    assert entry.event is Event.CREATED and entry.new == lost.to_dict() and "recorded on open" in entry.reason
    assert [e.event for e in second.history("alice", kept.id)] == [Event.CREATED]
