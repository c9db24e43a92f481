"""Weight memory over HTTP, end to end on the real model: a consolidation job commits a preference to a
user's weights; its version, drift report and adapter are served; rollback moves the observations back to
retrieval; deleting the user restores the base model's answers and changes nobody else."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
from peft import LoraConfig

from tests.api.conftest import Served

pytestmark = [pytest.mark.slow, pytest.mark.server]


def _ask(c: httpx.Client, user: str, question: str) -> str:
    """A greedy answer in a brand-new thread: it depends only on the user's memory and the question."""
    r = c.post(
        "/v1/chat/completions",
        json={
            "user": user,
            "messages": [{"role": "user", "content": question}],
            "max_tokens": 24,
            "temperature": 0,
            "metadata": {"thread_id": f"t-{uuid.uuid4().hex[:8]}"},
        },
    )
    assert r.status_code == 200, r.text
    return str(r.json()["choices"][0]["message"]["content"])


def _wait_for_job(c: httpx.Client, job_id: str, timeout: float = 1200) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/v1/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return dict(job)
        time.sleep(2)
    raise AssertionError(f"job {job_id} still running after {timeout} s")


def _metric(served: Served, sample: str) -> float:
    """The value of one sample (`name{labels}`) in /metrics; 0 when absent."""
    for line in httpx.get(f"{served.url}/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0


COMMITTED = 'imprint_edits_total{outcome="committed"}'
DONE = 'imprint_consolidation_runs_total{status="done"}'
DRIFT_PASSED = 'imprint_drift_checks_total{result="passed"}'


def _statuses(c: httpx.Client, user: str) -> list[str]:
    return [m["status"] for m in c.get("/v1/memories", params={"user_id": user}).json()["results"]]


def test_consolidate_inspect_rollback_and_forget(served: Served) -> None:
    alice, bob, fresh = (f"{n}-{uuid.uuid4().hex[:6]}" for n in ("alice", "bob", "fresh"))
    with served.client("acme") as c, served.client("globex") as other:
        assert (
            c.post(
                "/v1/memories",
                json={"user_id": alice, "memory": {"aspect": "favorite drink", "value": "green tea"}},
            ).status_code
            == 201
        )
        assert (
            c.post(
                "/v1/memories", json={"user_id": bob, "memory": {"aspect": "pet", "value": "cats"}}
            ).status_code
            == 201
        )
        bob_memories = c.get("/v1/memories", params={"user_id": bob}).json()

        before = {name: _metric(served, name) for name in (COMMITTED, DONE, DRIFT_PASSED)}
        queued = c.post(f"/v1/users/{alice}/consolidate")
        assert queued.status_code == 202, queued.text
        assert queued.json()["status"] == "queued" and queued.json()["user_id"] == alice
        job = _wait_for_job(c, queued.json()["id"])
        assert job["status"] == "done", job
        result = job["result"]
        assert isinstance(result, dict) and result["committed"] == 1 and result["user_id"] == alice
        assert other.get(f"/v1/jobs/{job['id']}").status_code == 404  # another tenant's job
        for name in (COMMITTED, DONE, DRIFT_PASSED):
            assert _metric(served, name) == before[name] + 1, name

        edits = c.get(f"/v1/users/{alice}/edits").json()
        assert edits["head"] == 1 and len(edits["versions"]) == 1
        [version] = edits["versions"]
        assert version["in_force"] and version["editor"] == "rome"
        assert version["drift"]["passed"] is True and version["drift"]["checks"]
        [request] = version["requests"]
        assert request["target"] == "green tea"
        assert _statuses(c, alice) == ["in_weights"]
        assert other.get(f"/v1/users/{alice}/edits").json() == {"user_id": alice, "head": 0, "versions": []}

        answer = _ask(c, alice, request["question"])  # nothing recalled: the observation is in the weights
        base = _ask(c, fresh, request["question"])
        assert "green tea" in answer.lower(), answer
        assert answer != base

        # ROME's memory is scoped by default, which a LoRA adapter cannot express: refused unless asked
        refused = c.get(f"/v1/users/{alice}/adapter")
        assert refused.status_code == 422 and "unscoped=true" in refused.text, refused.text
        zipped = c.get(f"/v1/users/{alice}/adapter", params={"unscoped": "true"})
        assert zipped.status_code == 200 and zipped.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
            assert sorted(archive.namelist()) == ["adapter_config.json", "adapter_model.safetensors"]
            config = LoraConfig(
                **{
                    k: v
                    for k, v in json.loads(archive.read("adapter_config.json")).items()
                    if k in LoraConfig.__dataclass_fields__
                }
            )
        assert any("down_proj" in m for m in config.target_modules)
        assert c.get(f"/v1/users/{fresh}/adapter").status_code == 404

        back = c.post(f"/v1/users/{alice}/rollback", json={"version": 0}).json()
        assert back["head"] == 0 and back["reconciled"] == 1
        assert _statuses(c, alice) == ["pending"]  # back in retrieval
        assert c.post(f"/v1/users/{alice}/rollback", json={"version": 7}).status_code == 404
        again = c.post(f"/v1/users/{alice}/rollback", json={"version": 1}).json()
        assert again["head"] == 1 and _statuses(c, alice) == ["in_weights"]

        bob_before = _ask(c, bob, "Which animal should I adopt?")
        gone = c.delete(f"/v1/users/{alice}")
        assert gone.status_code == 200, gone.text
        counts = gone.json()
        assert counts["observations"] == 1 and counts["weight_versions"] == 1 and counts["jobs"] == 1
        assert counts["threads"] >= 1 and counts["history_entries"] >= 1

        assert c.get(f"/v1/users/{alice}/edits").json()["versions"] == []
        assert c.get("/v1/memories", params={"user_id": alice}).json()["count"] == 0
        assert _ask(c, alice, request["question"]) == base  # the base model's answer again
        assert c.get("/v1/memories", params={"user_id": bob}).json() == bob_memories
        assert _ask(c, bob, "Which animal should I adopt?") == bob_before
        assert not (Path(served.state) / "weights" / "users" / f"acme.{alice}").exists()
