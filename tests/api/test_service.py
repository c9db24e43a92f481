"""The HTTP surface, driven with real requests against a real `imprint serve` process."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.server]

TIMEOUT = httpx.Timeout(120.0)


def _user() -> str:
    return f"h-{uuid.uuid4().hex[:8]}"


def test_health(server: str) -> None:
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}


def test_chat_observes_and_lists_memories(server: str) -> None:
    user = _user()
    r = httpx.post(
        f"{server}/v1/users/{user}/chat",
        json={"message": "I'm allergic to peanuts, so I never order satay.", "thread_id": "t1"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reply"] and body["user_id"] == user and body["thread_id"] == "t1" and body["turn"] == 0
    # observation happens after the reply: poll briefly
    for _ in range(60):
        memories = httpx.get(f"{server}/v1/users/{user}/memories", timeout=TIMEOUT).json()
        if memories["count"]:
            break
        time.sleep(0.5)
    assert memories["count"] >= 1
    assert all(m["user_id"] == user and m["status"] == "pending" for m in memories["memories"])
    pending = httpx.get(f"{server}/v1/users/{user}/memories", params={"status": "pending"}).json()
    assert pending["count"] == memories["count"]
    assert (
        httpx.get(f"{server}/v1/users/{user}/memories", params={"status": "in_weights"}).json()["count"] == 0
    )


def test_other_users_see_nothing(server: str) -> None:
    alice, bob = _user(), _user()
    httpx.post(
        f"{server}/v1/users/{alice}/chat",
        json={"message": "I prefer window seats on planes."},
        timeout=TIMEOUT,
    )
    assert httpx.get(f"{server}/v1/users/{bob}/memories").json() == {
        "user_id": bob,
        "count": 0,
        "memories": [],
    }


@pytest.mark.parametrize(
    ("path_user", "message"),
    [
        ("ok-user", ""),
        ("ok-user", "x" * 1_000_000),
        ("..%2Fx", "I prefer aisle seats."),
        ("a%00b", "I prefer aisle seats."),
        ("%20", "I prefer aisle seats."),
    ],
)
def test_bad_input_gets_a_4xx_and_writes_nothing(server: str, path_user: str, message: str) -> None:
    r = httpx.post(f"{server}/v1/users/{path_user}/chat", json={"message": message}, timeout=TIMEOUT)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["detail"]
    listed = httpx.get(f"{server}/v1/users/ok-user/memories", timeout=TIMEOUT).json()
    assert listed["count"] == 0


def test_empty_user_id_in_path_is_not_routed(server: str) -> None:
    r = httpx.post(f"{server}/v1/users//chat", json={"message": "hi"}, timeout=TIMEOUT)
    assert r.status_code in (404, 405, 422)


def test_malformed_body_and_status_filter_are_4xx(server: str) -> None:
    r = httpx.post(f"{server}/v1/users/someone/chat", json={"text": "wrong field"}, timeout=TIMEOUT)
    assert r.status_code == 422
    r = httpx.get(f"{server}/v1/users/someone/memories", params={"status": "forgotten"}, timeout=TIMEOUT)
    assert r.status_code == 422
    assert "forgotten" in r.json()["detail"]
