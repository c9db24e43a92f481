"""A real `imprint serve` process on 127.0.0.1 with auth on, shared by the HTTP tests of the session."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.auth import KeyStore
from tests.conftest import free_port

TENANTS = ("acme", "globex")
TIMEOUT = httpx.Timeout(300.0)


def imprint_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a child imprint process: its own state, short answers, the shared model cache."""
    env = dict(os.environ)
    env.update(
        {
            "IMPRINT_STATE_DIR": str(state_dir),
            "IMPRINT_MAX_NEW_TOKENS": "16",
            "HF_HUB_OFFLINE": "1",
            "ANONYMIZED_TELEMETRY": "False",
            **extra,
        }
    )
    return env


@dataclass(frozen=True)
class Served:
    """A running service: its URL, its state directory and one API key per tenant."""

    url: str
    state: Path
    keys: dict[str, str]

    def client(self, tenant: str = "acme") -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.keys[tenant]}"}, timeout=TIMEOUT
        )


def start_server(state: Path, log_path: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """`imprint serve` on a free port; returns once /healthz answers."""
    port = free_port()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=imprint_env(state, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"imprint serve exited early:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"imprint serve did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.5)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextmanager
def serving(state: Path, **env: str) -> Iterator[Served]:
    """A service over `state`, with keys for each of `TENANTS` made before it starts."""
    store = KeyStore(state / "keys.sqlite")
    keys = {tenant: store.create(tenant, "tests")[0] for tenant in TENANTS}
    store.close()
    proc, url = start_server(
        state,
        state / "serve.log",
        IMPRINT_CONSOLIDATION_INTERVAL_MINUTES="0",
        **{"IMPRINT_MAX_TOKENS_LIMIT": "32", **env},  # keeps the longest answers a request may ask for short
    )
    try:
        yield Served(url=url, state=state, keys=keys)
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One service shared by the HTTP tests of the session."""
    with serving(tmp_path_factory.mktemp("serve-state")) as running:
        yield running
