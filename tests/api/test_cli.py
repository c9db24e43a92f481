"""The command line as a user runs it: separate processes, piped input, the demo."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.api.conftest import imprint_env

pytestmark = pytest.mark.slow


def imprint(
    state: Path, *args: str, stdin: str = "", timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=imprint_env(state, COLUMNS="200"),
        timeout=timeout,
    )


def test_a_new_process_continues_the_thread(tmp_path: Path) -> None:
    first = imprint(
        tmp_path, "chat", "--user", "alice", "--thread", "t1", stdin="I usually prefer aisle seats.\n"
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip()  # the streamed answer
    second = imprint(tmp_path, "chat", "--user", "alice", "--thread", "t1", stdin="Thanks!\nBye.\n")
    assert second.returncode == 0, second.stderr

    from agent.threads import open_checkpointer, thread_key

    saver = open_checkpointer(tmp_path / "threads.sqlite")
    snap = saver.get_tuple({"configurable": {"thread_id": thread_key("alice", "t1")}})
    assert snap is not None
    messages = snap.checkpoint["channel_values"]["messages"]
    assert [m.type for m in messages] == ["human", "ai"] * 3
    assert messages[0].content == "I usually prefer aisle seats."

    listed = imprint(tmp_path, "memories", "--user", "alice")
    assert listed.returncode == 0, listed.stderr
    assert "aisle" in listed.stdout


def test_bad_user_id_is_a_clear_error(tmp_path: Path) -> None:
    res = imprint(tmp_path, "memories", "--user", "../x")
    assert res.returncode == 2
    assert "../x" in res.stderr


def test_demo_shows_observations_and_recall(tmp_path: Path) -> None:
    res = imprint(tmp_path, "demo")
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    assert all(f"Session {n}" in out for n in (1, 2, 3, 4))
    assert "memories of demo-alice" in out
    assert "recalled into the prompt" in out
    assert "consolidation of demo-alice: done" in out and "committed" in out
    assert "in_weights" in out  # the memories table after consolidation
    assert "prompt tokens used for recalled memory" in out
    for word in ("vegan", "seasick"):
        assert word in out.lower()
    # asked by name with nothing recalled, the committed preferences are answered from the weights alone
    served = re.search(r"answered from the weights: (\d+) of (\d+) questions .* (\d+) on the base model", out)
    assert served, out[-3000:]
    with_weights, asked, on_base = map(int, served.groups())
    assert asked >= 4 and with_weights >= asked // 2 and with_weights > on_base, served.group(0)

    # the demo's state, consolidated again from the command line: nothing left to do, nothing changes
    again = imprint(tmp_path, "consolidate", "--user", "demo-alice")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "consolidation of demo-alice: done" in again.stdout and "already in the weights" in again.stdout
    everyone = imprint(tmp_path, "consolidate", "--all")
    assert everyone.returncode == 0, everyone.stderr[-3000:]


def test_consolidate_needs_exactly_one_target(tmp_path: Path) -> None:
    res = imprint(tmp_path, "consolidate")
    assert res.returncode == 2 and "exactly one of --user U and --all" in res.stderr
