"""The OpenAI-compatible chat route, driven by the official `openai` client against `imprint serve`."""

from __future__ import annotations

import uuid

import httpx
import openai
import pytest

from tests.api.conftest import Served
from tests.api.test_service import wait_for_memories

pytestmark = [pytest.mark.slow, pytest.mark.server]


def _client(served: Served, tenant: str = "acme") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{served.url}/v1", api_key=served.keys[tenant], max_retries=0, timeout=300)


def test_models_lists_the_served_model(served: Served) -> None:
    models = _client(served).models.list()
    assert [m.id for m in models.data] == ["bundled:smollm2-135m-instruct"]


def test_completion_is_personalised_observed_and_counted(served: Served) -> None:
    user = f"oa-{uuid.uuid4().hex[:8]}"
    client = _client(served)
    first = client.chat.completions.create(
        model="imprint",
        user=user,
        messages=[{"role": "user", "content": "I'm vegetarian, so no meat for me please."}],
        max_tokens=8,
        extra_headers={"X-Imprint-Thread": "dinner"},
    )
    choice = first.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert first.usage is not None
    assert 0 < first.usage.completion_tokens <= 8
    assert first.usage.prompt_tokens > 20  # the system prompt alone is longer
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {served.keys['acme']}"}) as h:
        memories = wait_for_memories(h, user)
    assert any(m["thread_id"] == "dinner" for m in memories)
    second = client.chat.completions.create(
        model="imprint",
        user=user,
        messages=[{"role": "user", "content": "What should I cook for dinner tonight?"}],
        max_tokens=8,
        metadata={"thread_id": "dinner"},
    )
    extra = second.model_extra or {}
    assert extra["imprint"]["thread_id"] == "dinner" and extra["imprint"]["turn"] == 1
    assert any(memory_id["id"] in {m["id"] for m in memories} for memory_id in extra["imprint"]["recalled"])


def test_stream_sends_the_same_answer_as_chunks(served: Served) -> None:
    client = _client(served)
    question = [{"role": "user", "content": "Name a good book to read on a train."}]
    whole = client.chat.completions.create(
        model="imprint",
        user="streamer",
        messages=question,
        max_tokens=12,
        temperature=0,
        extra_headers={"X-Imprint-Thread": "a"},
    )
    chunks = list(
        client.chat.completions.create(
            model="imprint",
            user="streamer",
            messages=question,
            max_tokens=12,
            temperature=0,
            stream=True,
            extra_headers={"X-Imprint-Thread": "b"},
        )
    )
    assert len(chunks) >= 3  # the role, at least one piece of text, the finish
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.strip() == whole.choices[0].message.content
    assert len({c.id for c in chunks}) == 1


@pytest.mark.parametrize(
    ("messages", "extra", "needle"),
    [
        ([{"role": "assistant", "content": "hello"}], {}, "last message"),
        ([{"role": "user", "content": "hi"}] * 65, {}, "limit"),
        ([{"role": "user", "content": "   "}], {}, "empty"),
        ([{"role": "user", "content": "hi"}], {"n": 2}, "n"),
        ([{"role": "user", "content": "hi"}], {"max_tokens": 0}, "max_tokens"),
    ],
)
def test_bad_requests_are_4xx_with_a_reason(
    served: Served, messages: list[dict[str, str]], extra: dict[str, object], needle: str
) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        _client(served).chat.completions.create(
            model="imprint",
            user="bad",
            messages=messages,
            stream=False,
            **extra,  # type: ignore[arg-type]
        )
    assert needle in str(caught.value)


def test_streamed_bad_request_fails_before_streaming(served: Served) -> None:
    with pytest.raises(openai.UnprocessableEntityError):
        _client(served).chat.completions.create(
            model="imprint", user="a..b", messages=[{"role": "user", "content": "hi"}], stream=True
        )


def test_missing_user_is_a_clear_error(served: Served) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        _client(served).chat.completions.create(model="imprint", messages=[{"role": "user", "content": "hi"}])
    assert "user" in str(caught.value)


def test_wrong_key_is_401(served: Served) -> None:
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="imp_wrong_key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
