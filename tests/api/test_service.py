"""The HTTP surface, driven with real requests against a real `imprint serve` process (auth on)."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.api.conftest import TIMEOUT, Served

pytestmark = [pytest.mark.slow, pytest.mark.server]


def _user() -> str:
    return f"h-{uuid.uuid4().hex[:8]}"


def wait_for_memories(client: httpx.Client, user: str, at_least: int = 1) -> list[dict[str, object]]:
    """Observation happens after the reply, in the background: poll briefly."""
    for _ in range(120):
        found = client.get("/v1/memories", params={"user_id": user}).json()
        if found["count"] >= at_least:
            return list(found["results"])
        time.sleep(0.5)
    raise AssertionError(f"user {user} has fewer than {at_least} memories after 60 s")


def test_health_needs_no_key(served: Served) -> None:
    assert httpx.get(f"{served.url}/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer imp_nope_nope"},
        {"X-API-Key": "not-a-key"},
        {"Authorization": "Basic eDp5"},
    ],
)
def test_every_v1_route_needs_a_valid_key(served: Served, headers: dict[str, str]) -> None:
    for method, path in [
        ("GET", "/v1/memories?user_id=a"),
        ("POST", "/v1/users/a/chat"),
        ("GET", "/v1/users/a/edits"),
        ("DELETE", "/v1/users/a"),
        ("GET", "/v1/models"),
    ]:
        r = httpx.request(
            method, f"{served.url}{path}", headers=headers, json={"message": "hi"}, timeout=TIMEOUT
        )
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["detail"]


def test_x_api_key_header_works_too(served: Served) -> None:
    r = httpx.get(
        f"{served.url}/v1/memories", params={"user_id": "x"}, headers={"X-API-Key": served.keys["acme"]}
    )
    assert r.status_code == 200 and r.json() == {"user_id": "x", "count": 0, "results": []}


def test_chat_observes_and_lists_memories(served: Served) -> None:
    user = _user()
    with served.client() as client:
        r = client.post(
            f"/v1/users/{user}/chat",
            json={"message": "I'm allergic to peanuts, so I never order satay.", "thread_id": "t1"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["reply"] and body["user_id"] == user and body["thread_id"] == "t1" and body["turn"] == 0
        memories = wait_for_memories(client, user)
        assert all(m["user_id"] == user and m["status"] == "pending" for m in memories)
        pending = client.get("/v1/memories", params={"user_id": user, "status": "pending"}).json()
        assert pending["count"] == len(memories)
        in_weights = client.get("/v1/memories", params={"user_id": user, "status": "in_weights"}).json()
        assert in_weights["count"] == 0


def test_tenants_never_see_each_other(served: Served) -> None:
    """The same user id in two tenants is two users; a record id of one tenant is a 404 in the other."""
    user = _user()
    with served.client("acme") as acme, served.client("globex") as globex:
        made = acme.post(
            "/v1/memories",
            json={"user_id": user, "memory": {"aspect": "seat", "value": "window seats"}},
        )
        assert made.status_code == 201, made.text
        memory_id = made.json()["results"][0]["id"]
        assert globex.get("/v1/memories", params={"user_id": user}).json()["count"] == 0
        for method, path in [
            ("GET", f"/v1/memories/{memory_id}"),
            ("GET", f"/v1/memories/{memory_id}/history"),
            ("DELETE", f"/v1/memories/{memory_id}"),
        ]:
            assert globex.request(method, path).status_code == 404
        assert globex.put(f"/v1/memories/{memory_id}", json={"value": "aisle"}).status_code == 404
        hits = globex.post("/v1/memories/search", json={"user_id": user, "query": "seats"}).json()
        assert hits["results"] == []
        assert acme.get(f"/v1/memories/{memory_id}").json()["value"] == "window seats"


@pytest.mark.parametrize(
    ("path_user", "message"),
    [
        ("ok-user", ""),
        ("ok-user", "x" * 40_000),
        ("..%2Fx", "I prefer aisle seats."),
        ("a%00b", "I prefer aisle seats."),
        ("%20", "I prefer aisle seats."),
    ],
)
def test_bad_input_gets_a_4xx_and_writes_nothing(served: Served, path_user: str, message: str) -> None:
    with served.client() as client:
        r = client.post(f"/v1/users/{path_user}/chat", json={"message": message})
        assert 400 <= r.status_code < 500, r.text
        assert r.json()["detail"]
        assert client.get("/v1/memories", params={"user_id": "ok-user"}).json()["count"] == 0


def test_oversized_body_is_a_413(served: Served) -> None:
    with served.client() as client:
        r = client.post(
            "/v1/users/u/chat", content=b"x" * 9_000_000, headers={"Content-Type": "application/json"}
        )
    assert r.status_code == 413 and "bytes" in r.json()["detail"]


def test_malformed_body_and_status_filter_are_4xx(served: Served) -> None:
    with served.client() as client:
        r = client.post("/v1/users/someone/chat", json={"text": "wrong field"})
        assert r.status_code == 422 and "message" in r.json()["detail"]
        r = client.get("/v1/memories", params={"user_id": "someone", "status": "forgotten"})
        assert r.status_code == 422 and "status" in r.json()["detail"]


def test_metrics_count_requests_by_route_template(served: Served) -> None:
    with served.client() as client:
        client.get("/v1/memories", params={"user_id": "metrics-user"})
        client.get("/v1/memories/does-not-exist")
    text = httpx.get(f"{served.url}/metrics").text
    assert 'imprint_http_requests_total{method="GET",route="/v1/memories",status="200"}' in text
    assert 'route="/v1/memories/{memory_id}",status="404"' in text
    assert "does-not-exist" not in text  # ids never become labels
    assert "imprint_http_request_duration_seconds_bucket" in text
    assert 'imprint_edits_total{outcome="committed"}' in text  # read from the run log
