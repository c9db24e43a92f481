"""Mem0-style memory routes against `imprint serve`: add, list, get, update, delete, history, search."""

from __future__ import annotations

import uuid

import pytest

from tests.api.conftest import Served

pytestmark = [pytest.mark.slow, pytest.mark.server]


def _user() -> str:
    return f"m-{uuid.uuid4().hex[:8]}"


def test_explicit_memory_round_trip(served: Served) -> None:
    user = _user()
    with served.client() as c:
        made = c.post(
            "/v1/memories",
            json={
                "user_id": user,
                "memory": {"aspect": "drink", "value": "green tea", "polarity": "likes"},
                "thread_id": "crm",
            },
        )
        assert made.status_code == 201, made.text
        [event] = made.json()["results"]
        assert event["event"] == "ADD" and event["memory"] == "drink: likes green tea"
        got = c.get(f"/v1/memories/{event['id']}").json()
        assert got["user_id"] == user and got["explicit"] and got["status"] == "pending"
        assert got["thread_id"] == "crm" and got["created_at"].endswith("+00:00")

        updated = c.put(
            f"/v1/memories/{event['id']}", json={"value": "jasmine tea", "text": "I love jasmine tea"}
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["memory"] == "drink: likes jasmine tea"
        assert updated.json()["evidence"] == "I love jasmine tea"

        hits = c.post(
            "/v1/memories/search", json={"user_id": user, "query": "what tea do they drink?"}
        ).json()
        assert hits["results"][0]["id"] == event["id"] and 0 < hits["results"][0]["score"] <= 1

        assert c.delete(f"/v1/memories/{event['id']}").json() == {
            "message": "memory deleted",
            "id": event["id"],
        }
        assert c.get(f"/v1/memories/{event['id']}").status_code == 404
        history = c.get(f"/v1/memories/{event['id']}/history").json()
        assert [h["event"] for h in history] == ["created", "updated", "deleted"]
        assert history[1]["old_memory"] == "drink: likes green tea"
        assert history[1]["new_memory"] == "drink: likes jasmine tea"
        assert all("user_id" not in (h["new"] or {}) for h in history)  # no tenant-scoped id leaks


def test_a_fact_about_the_user_is_stored_as_what_they_are(served: Served) -> None:
    """Polarity "is": a self-description from a message and one posted outright read as facts."""
    user = _user()
    with served.client() as c:
        said = c.post(
            "/v1/memories",
            json={"user_id": user, "messages": [{"role": "user", "content": "I work as a paramedic."}]},
        )
        assert said.status_code == 201, said.text
        assert [e["memory"] for e in said.json()["results"]] == ["occupation: is work as a paramedic"]
        posted = c.post(
            "/v1/memories",
            json={"user_id": user, "memory": {"aspect": "age", "value": "52", "polarity": "is"}},
        )
        assert posted.status_code == 201, posted.text
        assert posted.json()["results"][0]["memory"] == "age: is 52"
        bad = c.post(
            "/v1/memories",
            json={"user_id": user, "memory": {"aspect": "age", "value": "52", "polarity": "was"}},
        )
        assert bad.status_code == 422


def test_messages_are_extracted_from_the_user_turns_only(served: Served) -> None:
    user = _user()
    with served.client() as c:
        made = c.post(
            "/v1/memories",
            json={
                "user_id": user,
                "messages": [
                    {"role": "user", "content": "I get seasick easily, so no boat trips for me."},
                    {"role": "assistant", "content": "I love boat trips and spicy food!"},
                    {"role": "user", "content": "Also, I prefer quiet hotels."},
                ],
            },
        )
        assert made.status_code == 201, made.text
        listed = c.get("/v1/memories", params={"user_id": user}).json()
        assert listed["count"] == len(made.json()["results"]) >= 2
        evidence = " ".join(m["evidence"] for m in listed["results"])
        assert "seasick" in evidence and "quiet" in evidence
        assert "spicy" not in evidence  # the assistant's words are never the user's preferences


@pytest.mark.parametrize(
    "body",
    [
        {"user_id": "u"},  # neither messages nor memory
        {"user_id": "u", "messages": [], "memory": {"aspect": "a", "value": "b"}},
        {"user_id": "u", "messages": []},
        {"user_id": "u", "messages": [{"role": "user", "content": "x"}] * 65},
        {"user_id": "u", "memory": {"aspect": "", "value": "b"}},
        {"user_id": "u", "memory": {"aspect": "a", "value": "b", "confidence": 2}},
        {"user_id": "bad/id", "memory": {"aspect": "a", "value": "b"}},
    ],
)
def test_bad_adds_are_422_and_store_nothing(served: Served, body: dict[str, object]) -> None:
    with served.client() as c:
        r = c.post("/v1/memories", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["detail"]
        assert c.get("/v1/memories", params={"user_id": "u"}).json()["count"] == 0


def test_empty_update_and_unknown_ids(served: Served) -> None:
    with served.client() as c:
        made = c.post("/v1/memories", json={"user_id": _user(), "memory": {"aspect": "a", "value": "b"}})
        memory_id = made.json()["results"][0]["id"]
        assert c.put(f"/v1/memories/{memory_id}", json={}).status_code == 422
        assert c.get("/v1/memories/no-such-id").status_code == 404
        assert c.get("/v1/memories/no-such-id/history").status_code == 404
        assert c.delete("/v1/memories/bad..id").status_code == 422
