"""The agent graph end to end on the real model, a real chromadb and a real SQLite checkpointer."""

from __future__ import annotations

import uuid

import pytest

from agent.prompts import build_messages
from api.runtime import Runtime
from memory.errors import InvalidInput
from memory.observations import Polarity, Status

pytestmark = pytest.mark.slow


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def test_a_turn_is_answered_and_its_preference_observed(runtime: Runtime) -> None:
    agent = runtime.require_agent()
    user = _user()
    result = agent.chat(user, "I get seasick easily, so I avoid boat trips.", "t1")
    agent.flush()
    assert result.reply
    assert result.turn == 0
    stored = runtime.store.list(user)
    assert stored, "the preference in the turn was not observed"
    assert all(o.thread_id == "t1" and o.turn == 0 and o.status is Status.PENDING for o in stored)
    assert any(o.polarity is Polarity.AVOIDS for o in stored)


def test_the_next_thread_recalls_it_and_other_users_do_not(runtime: Runtime) -> None:
    agent = runtime.require_agent()
    alice, bob = _user(), _user()
    agent.chat(alice, "My kids are vegan, so we always check every menu twice.", "s1")
    agent.flush()
    question = "What should I cook for the family tonight?"
    recalled = agent.chat(alice, question, "s2").recalled
    assert any("vegan" in r["line"].lower() for r in recalled), recalled
    assert agent.chat(bob, question, "s2").recalled == []


def test_observations_carried_by_weights_are_not_recalled(runtime: Runtime) -> None:
    agent = runtime.require_agent()
    user = _user()
    agent.chat(user, "I can't stand crowded tourist spots; I love quiet cabins by a lake.", "s1")
    agent.flush()
    question = "Where should we stay for a weekend away?"
    assert agent.chat(user, question, "s2").recalled
    for obs in runtime.store.list(user):
        runtime.store.set_status(user, obs.id, Status.IN_WEIGHTS, reason="test: consolidated")
    assert agent.chat(user, question, "s3").recalled == []


def test_turns_accumulate_in_the_thread(runtime: Runtime) -> None:
    agent = runtime.require_agent()
    user = _user()
    agent.chat(user, "Hello there.", "t")
    second = agent.chat(user, "Tell me a fun fact.", "t")
    assert second.turn == 1
    history = agent.history(user, "t")
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert agent.history(user, "other") == []


def test_streamed_and_whole_turns_answer_alike(runtime: Runtime) -> None:
    """`chat` generates without a streamer; `stream` token by token: same reply, same token counts."""
    agent, lm = runtime.require_agent(), runtime.require_lm()
    user = _user()
    question = "Name three colours."
    whole = agent.chat(user, question, "a", {"max_new_tokens": 12})
    events = list(agent.stream(user, question, "b", {"max_new_tokens": 12}))
    streamed = events[-1].result
    assert streamed is not None and len(events) > 2  # tokens came one by one before the result
    assert "".join(e.token for e in events[:-1] if e.token).strip() == streamed.reply == whole.reply
    assert (whole.prompt_tokens, whole.completion_tokens) == (
        streamed.prompt_tokens,
        streamed.completion_tokens,
    )
    assert whole.prompt_tokens == lm.encode_chat(build_messages([], [], question)).shape[-1]
    assert 0 < whole.completion_tokens <= 12


@pytest.mark.parametrize(
    ("user_id", "text"),
    [
        ("ok-user", ""),
        ("ok-user", "   \n "),
        ("ok-user", "x" * 1_000_000),
        ("../x", "I prefer aisle seats."),
        ("", "I prefer aisle seats."),
        ("a\x00b", "I prefer aisle seats."),
        ("a/b", "I prefer aisle seats."),
    ],
)
def test_bad_input_is_refused_and_writes_nothing(runtime: Runtime, user_id: str, text: str) -> None:
    agent = runtime.require_agent()
    users_before = set(runtime.store.users())
    with pytest.raises(InvalidInput):
        agent.chat(user_id, text, "t1")
    agent.flush()
    assert set(runtime.store.users()) == users_before
    if user_id == "ok-user":
        assert agent.history(user_id, "t1") == []
        assert runtime.store.count(user_id) == 0


def test_each_user_is_answered_with_their_own_weight_memory(runtime: Runtime) -> None:
    """A delta committed for one user changes that user's answers only, and deleting it restores base."""
    import torch

    from memory.weights.delta import Delta, LowRankUpdate

    assert runtime.weights is not None
    agent = runtime.require_agent()
    edited, other = _user(), _user()
    question = "Name a primary colour."
    base_answer = agent.chat(other, question, "w").reply
    gen = torch.Generator().manual_seed(0)
    big = LowRankUpdate(
        module="model.layers.8.mlp.down_proj",
        down=torch.randn(4, 1536, generator=gen) * 0.5,
        up=torch.randn(576, 4, generator=gen) * 0.5,
    )
    gate, runtime.weights.gate = runtime.weights.gate, None  # a deliberately big delta: the drift gate
    try:  # would (rightly) refuse it; the gate has its own tests (tests/consolidation/test_drift_guard.py)
        runtime.weights.commit(
            edited, Delta.of([big]), editor="test", settings={}, requests=[], metrics={}, seconds=0.0
        )
    finally:
        runtime.weights.gate = gate
    assert agent.chat(edited, question, "w").reply != base_answer
    assert agent.chat(other, question, "w2").reply == base_answer
    runtime.weights.delete_user(edited)
    assert agent.chat(edited, question, "w3").reply == base_answer
