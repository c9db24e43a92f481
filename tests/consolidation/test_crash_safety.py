"""Crash safety of consolidation: a process SIGKILLed after the delta is computed, in the middle of the
commit, or after the commit but before any status changed, leaves ledger, delta files and observation
statuses in agreement once restarted, loses no observation, and each preference is committed exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agent.llm import ChatLM
from memory.embedder import Embedder
from memory.faults import ENV
from memory.observations import Status
from tests.consolidation.crash_worker import SCRIPT, USER, pieces

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def _version_files(state: Path) -> list[Path]:
    return sorted((state / "weights").rglob("v*.safetensors"))


@pytest.mark.parametrize(
    "point", ["consolidation:computed", "weights:file-written", "consolidation:committed"]
)
def test_a_killed_consolidation_recovers_and_commits_each_preference_once(
    point: str, tmp_path: Path, lm: ChatLM, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> None:
    state, cache = tmp_path / "state", tmp_path_factory.getbasetemp() / "crash-rome"
    cache.mkdir(exist_ok=True)
    child = subprocess.run(
        [sys.executable, "-m", "tests.consolidation.crash_worker", str(state), str(cache)],
        cwd=REPO,
        env={**os.environ, ENV: point},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]
    assert f"crash point {point}" in child.stderr

    with pieces(state, cache, lm, embedder) as p:
        orphans = p.weights.recover()  # what the service does on start-up
        assert len(orphans) == (1 if point == "weights:file-written" else 0)
        head = p.weights.head(USER)
        assert head == (1 if point == "consolidation:committed" else 0)
        assert len(_version_files(state)) == head  # every file on disk is named by a ledger row
        before = {o.id: o.status for o in p.store.list(USER)}
        assert sorted(before) == sorted(s[0] for s in SCRIPT)  # no observation lost
        assert set(before.values()) == {Status.PENDING}  # the crash came before any status change

        run = p.consolidator.run(USER)
        if head:  # the commit survived: the restart only brings the statuses in line with it
            assert run.version is None and run.count("committed") == 0 and run.reconciled == len(SCRIPT)
        else:
            assert run.version == 1 and run.count("committed") == 2, run.outcomes
        assert p.weights.head(USER) == 1 and len(p.weights.versions(USER)) == 1
        assert len(_version_files(state)) == 1
        carried = sorted(i for e in p.weights.versions(USER)[0].requests for i in e["observations"])
        assert carried == sorted(s[0] for s in SCRIPT)
        assert {o.status for o in p.store.list(USER)} == {Status.IN_WEIGHTS}

        again = p.consolidator.run(USER)  # exactly once: nothing more to do
        assert again.version is None and again.reconciled == 0 and p.weights.head(USER) == 1
