"""The endpoint judge against a real HTTP server: the questions it asks, its verdicts, retries, and the clear
errors it gives for every way an endpoint can fail."""

from __future__ import annotations

import re
import socket

import pytest

from eval.endpoint_judge import (
    ChatEndpoint,
    EndpointConfig,
    EndpointPreferenceJudge,
    EndpointTargetJudge,
    parse_yes_no,
)
from eval.errors import JudgeEndpointError
from eval.preference_judge import PreferenceCase
from tests.eval.judge_server import serving


def states_expected(question: str) -> str:
    """A scripted judge: yes when the reply contains one of the expected phrasings."""
    expected = re.search(r"phrasings\): (.*)\n", question).group(1).split(" | ")  # type: ignore[union-attr]
    reply = re.search(r"reply: (.*)\n", question).group(1).lower()  # type: ignore[union-attr]
    return "Yes." if any(e.lower() in reply for e in expected) else "no"


def _endpoint(url: str, **kw: object) -> ChatEndpoint:
    return ChatEndpoint(EndpointConfig(url=url, model="grader-7b", backoff=0.0, **kw))  # type: ignore[arg-type]


def test_target_verdicts_come_from_the_endpoint_in_order() -> None:
    with serving(states_expected) as fake:
        endpoint = _endpoint(fake.url, api_key="sk-test", workers=3)
        judge = EndpointTargetJudge(endpoint)
        answers = ["I'd go for jazz.", "Rock, always.", "No idea.", "Some smooth JAZZ", "Classical", "Hm"]
        targets = [["jazz"], ["jazz", "rock"], ["jazz"], ["jazz"], ["pop"], ["classical"]]
        verdicts = judge.judge_many(answers, targets)
        endpoint.close()
    assert [v.hit for v in verdicts] == [True, True, False, True, False, False]
    assert {v.how for v in verdicts} == {"endpoint"}
    assert len(fake.requests) == 6
    first = fake.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == "Bearer sk-test"
    assert first["body"]["model"] == "grader-7b" and first["body"]["temperature"] == 0
    assert first["body"]["messages"][0]["role"] == "system"
    assert any("jazz | rock" in q for q in fake.questions())  # every phrasing of the target is shown
    assert "grader-7b" in judge.describe()


def test_rate_limits_and_server_errors_are_retried() -> None:
    with serving(lambda q: "yes") as fake:
        fake.failures = [(503, "busy"), (429, "slow down")]
        endpoint = _endpoint(fake.url)
        assert endpoint.ask("anything?") is True
        endpoint.close()
    assert len(fake.requests) == 3


def test_it_gives_up_with_the_last_error() -> None:
    with serving(lambda q: "yes") as fake:
        fake.failures = [(502, "bad gateway")] * 5
        endpoint = _endpoint(fake.url, retries=2)
        with pytest.raises(JudgeEndpointError, match=r"failed 3 times; last: HTTP 502: bad gateway"):
            endpoint.ask("anything?")
        endpoint.close()
    assert len(fake.requests) == 3


def test_a_client_error_is_reported_at_once_with_the_endpoints_message() -> None:
    with serving(lambda q: "yes") as fake:
        fake.failures = [(401, '{"error": "invalid api key"}')]
        endpoint = _endpoint(fake.url)
        with pytest.raises(JudgeEndpointError, match=r"HTTP 401: .*invalid api key"):
            endpoint.check()
        endpoint.close()
    assert len(fake.requests) == 1


def test_replies_that_are_not_a_verdict_are_errors() -> None:
    with serving(lambda q: "Perhaps, it depends.") as fake:
        endpoint = _endpoint(fake.url)
        with pytest.raises(JudgeEndpointError, match=r"replied 'Perhaps, it depends.'; expected yes or no"):
            endpoint.ask("anything?")
        fake.raw = '{"object": "error"}'
        with pytest.raises(JudgeEndpointError, match=r"returned no chat completion"):
            endpoint.ask("anything?")
        endpoint.close()


def test_an_unreachable_endpoint_is_retried_then_reported() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = _endpoint(f"http://127.0.0.1:{port}/v1", retries=1)
    with pytest.raises(JudgeEndpointError, match=r"failed 2 times; last: ConnectError"):
        endpoint.check()
    endpoint.close()


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [("yes", True), ("Yes, it does.", True), ("NO.", False), ("  no - it ignores it", False)],
)
def test_verdict_parsing(reply: str, verdict: bool) -> None:
    assert parse_yes_no(reply) is verdict


def test_preference_verdicts_follow_prefevals_rule() -> None:
    """Violation is asked only of a reply that did not acknowledge the preference."""

    def decide(question: str) -> str:
        reply = re.search(r"request: (.*)\n", question).group(1).lower()  # type: ignore[union-attr]
        if "take this preference into account" in question:
            return "yes" if "vegan" in reply else "no"
        return "yes" if "steak" in reply else "no"

    case = PreferenceCase(preference="I am vegan.", target="vegan food")
    with serving(decide) as fake:
        endpoint = _endpoint(fake.url)
        judge = EndpointPreferenceJudge(endpoint)
        acknowledged = judge.judge("A vegan curry, since you avoid meat.", case)
        asked_once = len(fake.requests)
        violated = judge.judge("Try the steak house downtown.", case)
        neither = judge.judge("Anything you like.", case)
        endpoint.close()
    assert (acknowledged.acknowledged, acknowledged.violated) == (True, False) and asked_once == 1
    assert (violated.acknowledged, violated.violated) == (False, True)
    assert (neither.acknowledged, neither.violated) == (False, False)
    assert len(fake.requests) == 5
    assert acknowledged.ack_similarity is None  # no similarity evidence: the endpoint's verdict stands
    assert "I am vegan." in fake.questions()[0]
