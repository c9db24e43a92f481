"""End to end through the agent, the real extractor, the default drift guard and ROME: over three sessions
a user reveals two preferences implicitly and repeats them; consolidation commits both to her weights; in a
fourth session, with those observations out of the recall context, the answers still show them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.llm import ChatLM
from api.runtime import Runtime, build_runtime
from api.settings import Settings
from consolidation.judge import TargetJudge
from memory.embedder import Embedder
from memory.observations import Status

pytestmark = pytest.mark.slow

USER = "noor"
SESSIONS = [
    [
        "Hi! We're planning a family trip. I get seasick easily, so last year's ferry ride was miserable.",
        "My kids are vegan, so we always check every menu twice.",
    ],
    ["By the way, I get seasick on boats, so please no ferries or cruises."],
    ["My kids are vegan, so please keep every recipe plant-based."],
]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, lm: ChatLM) -> Iterator[Runtime]:
    settings = Settings(state_dir=tmp_path_factory.mktemp("state"), max_new_tokens=24)
    rt = build_runtime(settings, embedder=embedder, lm=lm)
    yield rt
    rt.close()


def test_preferences_revealed_over_sessions_are_answered_from_weights(
    runtime: Runtime, embedder: Embedder
) -> None:
    agent, store = runtime.require_agent(), runtime.store
    for n, turns in enumerate(SESSIONS, 1):
        for text in turns:
            agent.chat(USER, text, f"session-{n}")
    agent.flush()
    aspects = {o.aspect for o in store.list(USER)}
    assert {"transportation", "diet"} <= aspects, store.list(USER)

    run = runtime.require_consolidation().run_now(USER)
    assert run.status == "done" and run.result is not None, run
    committed = [o for o in run.result["outcomes"] if o["action"] == "committed"]
    committed_aspects = {o["preference"].split(":")[0] for o in committed}
    assert {"transportation", "diet"} <= committed_aspects, run.result["outcomes"]
    version = runtime.require_weights().versions(USER)[-1]
    assert version.drift is not None and version.drift["passed"]  # the default guard passed it

    entries = {e["subject"]: e for e in version.requests}
    in_weights = {o.id for o in store.list(USER, status=Status.IN_WEIGHTS)}
    judge = TargetJudge(embedder)
    for aspect in ("transportation", "diet"):
        entry = entries[aspect]
        assert set(entry["observations"]) <= in_weights
        result = agent.chat(USER, entry["question"], "session-4")
        recalled = " ".join(r["line"] for r in result.recalled)
        assert not any(store.get(USER, i).value in recalled for i in entry["observations"])  # not recalled
        assert judge.judge(result.reply, entry["targets"]).hit, (entry["question"], result.reply)
