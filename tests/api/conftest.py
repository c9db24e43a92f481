"""A real `imprint serve` process on 127.0.0.1, shared by the HTTP tests of a module."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port


def imprint_env(state_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a child imprint process: its own state, short answers, the shared model cache."""
    env = dict(os.environ)
    env.update(
        IMPRINT_STATE_DIR=str(state_dir),
        IMPRINT_MAX_NEW_TOKENS="16",
        HF_HUB_OFFLINE="1",
        ANONYMIZED_TELEMETRY="False",
        **extra,
    )
    return env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start `imprint serve` and yield its base URL once /healthz answers."""
    state = tmp_path_factory.mktemp("serve-state")
    port = free_port()
    log_path = state / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=imprint_env(state),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"imprint serve exited early:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"imprint serve did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
