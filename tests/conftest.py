"""Shared fixtures: one embedder per test session, and a real chroma server for client/server tests."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.llm import ChatLM
from agent.model_loading import load_model
from api.settings import Settings
from memory.embedder import Embedder

log = logging.getLogger(__name__)

SERVER_START_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def model_cache_dir() -> Path:
    """The shared conversion cache: the GGUF is converted once per machine, not once per test run."""
    return Settings().model_cache_dir


@pytest.fixture(scope="session")
def lm(model_cache_dir: Path) -> ChatLM:
    """The real bundled language model, loaded once per session (eval mode, float32, CPU)."""
    return ChatLM(load_model(Settings().model, model_cache_dir))


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The bundled MiniLM embedder, loaded once: loading takes ~10 s."""
    return Embedder()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_heartbeat(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chroma run exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"chroma server on port {port} gave no heartbeat in {SERVER_START_TIMEOUT_S} s")


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `chroma run` subprocess on a free local port; yields "127.0.0.1:port"."""
    exe = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if exe is None:  # chromadb installs it; its absence is a broken environment, not a reason to skip
        raise RuntimeError("the `chroma` CLI is not on PATH; reinstall chromadb")
    root = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log_path = root / "server.log"
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [exe, "run", "--path", str(root / "data"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        _wait_for_heartbeat(proc, port, log_path)
        log.info("chroma server up on port %d", port)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
