"""End to end through the agent, the real extractor, the default drift guard and ROME: over three sessions
a user reveals two preferences implicitly and repeats them; consolidation commits both to her weights; in a
fourth session those observations are out of the recall context, and the edit questions, asked the way the
agent asks them (its system prompt, no recalled lines), are answered from the weights.

Not asserted: the agent's own reply when *other* pending memories are recalled into its system prompt. On
the 135M model that context can still pull the answer away from the edit (seen for the diet preference).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent.llm import ChatLM
from api.runtime import Runtime, build_runtime
from api.settings import Settings
from consolidation.judge import TargetJudge
from consolidation.metrics import greedy_answers
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
    runtime: Runtime, embedder: Embedder, lm: ChatLM
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
        recalled = {r["id"]: r["line"] for r in result.recalled}
        assert not set(recalled) & in_weights, recalled  # what is in the weights is not recalled
        consolidator = runtime.require_consolidation().consolidator
        with runtime.require_weights().applied(USER):
            (answer,) = greedy_answers(
                lm.model, lm.tokenizer, [entry["question"]], render=consolidator.render
            )
        assert judge.judge(answer, entry["targets"]).hit, (entry["question"], answer)
