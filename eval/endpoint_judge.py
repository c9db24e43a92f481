"""An OpenAI-compatible chat endpoint as the evaluation's judge, in place of the local embedding judges.

Why: the local judges (`TargetJudge`, `PreferenceJudge`) run anywhere with no service, but they are
similarity thresholds fitted on a few hundred hand labels. A researcher with a stronger model behind an
OpenAI-compatible server (vLLM, llama.cpp, a hosted API) can have it answer the same yes/no questions
instead. The verdict rules stay the same: a UPQA answer is a hit when it states the target (any phrasing);
a PrefEval answer is acknowledged when it takes the preference into account, and violated when it is not
acknowledged and recommends against the preference. The judge's model is recorded with every result.

The API key is read from the environment (`IMPRINT_JUDGE_API_KEY`), never from the command line, and is
not written to any results file. Requests are deterministic (temperature 0) and retried on rate limits,
server errors and dropped connections; any other failure stops the run with the endpoint's own message.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from consolidation.judge import Verdict
from eval.errors import JudgeEndpointError
from eval.preference_judge import PreferenceCase, PreferenceVerdict

log = logging.getLogger(__name__)

API_KEY_ENV = "IMPRINT_JUDGE_API_KEY"
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
SYSTEM = "You grade an assistant's replies. Answer with a single word: yes or no."
_FIRST_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class EndpointConfig:
    url: str  # the API base, e.g. http://127.0.0.1:8000/v1 (`/chat/completions` is appended)
    model: str
    api_key: str | None = None
    timeout: float = 60.0
    retries: int = 4  # extra tries after a retryable failure, with doubling waits from `backoff` seconds
    backoff: float = 0.5
    workers: int = 4  # concurrent requests in `judge_many`


def parse_yes_no(reply: str) -> bool:
    """The verdict in a reply whose first word is yes or no (case and punctuation ignored)."""
    word = _FIRST_WORD.search(reply.casefold())
    if word and word.group() in ("yes", "no"):
        return word.group() == "yes"
    raise JudgeEndpointError(f"the judge replied {reply[:120]!r}; expected yes or no")


class ChatEndpoint:
    """A minimal client of `POST {url}/chat/completions` that asks yes/no questions."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
        self._client = httpx.Client(timeout=config.timeout, headers=headers)
        self._endpoint = config.url.rstrip("/") + "/chat/completions"

    def close(self) -> None:
        self._client.close()

    def ask(self, question: str) -> bool:
        return parse_yes_no(self.complete(question))

    def complete(self, question: str) -> str:
        """The endpoint's reply to `question` under the grading system prompt."""
        body = {
            "model": self.config.model,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}],
            "temperature": 0,
            "max_tokens": 4,
        }
        last = ""
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(self.config.backoff * 2 ** (attempt - 1))
            try:
                response = self._client.post(self._endpoint, json=body)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                log.warning("judge endpoint: %s (try %d)", last, attempt + 1)
                continue
            if response.status_code in RETRY_STATUS:
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                log.warning("judge endpoint: %s (try %d)", last, attempt + 1)
                continue
            if response.status_code != 200:
                raise JudgeEndpointError(
                    f"{self._endpoint} answered HTTP {response.status_code}: {response.text[:300]}"
                )
            return _content(response, self._endpoint)
        raise JudgeEndpointError(f"{self._endpoint} failed {self.config.retries + 1} times; last: {last}")

    def check(self) -> None:
        """One request before a long run, so a wrong URL, model or key fails in seconds, not hours."""
        self.ask("Is the word 'yes' spelled y-e-s?")

    def describe(self) -> str:
        return f"endpoint judge ({self.config.model} at {self.config.url})"


def _content(response: httpx.Response, endpoint: str) -> str:
    try:
        payload: Any = response.json()
        content = payload["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise JudgeEndpointError(f"{endpoint} returned no chat completion: {response.text[:300]}") from None
    if not isinstance(content, str):
        raise JudgeEndpointError(f"{endpoint} returned a non-text message: {content!r}")
    return content


class EndpointTargetJudge:
    """UPQA's question, asked of the endpoint: does the answer state the target (in any phrasing)?"""

    def __init__(self, endpoint: ChatEndpoint) -> None:
        self.endpoint = endpoint

    def describe(self) -> str:
        return self.endpoint.describe()

    def judge(self, answer: str, targets: Sequence[str]) -> Verdict:
        return self.judge_many([answer], [targets])[0]

    def judge_many(self, answers: Sequence[str], targets: Sequence[Sequence[str]]) -> list[Verdict]:
        """Verdicts for answer i against target list i, `workers` requests at a time, in order."""
        if len(answers) != len(targets):
            raise ValueError(f"{len(answers)} answers but {len(targets)} target lists")
        questions = [target_question(a, t) for a, t in zip(answers, targets, strict=True)]
        with ThreadPoolExecutor(max_workers=self.endpoint.config.workers) as pool:
            hits = list(pool.map(self.endpoint.ask, questions))
        return [Verdict(hit, "endpoint", 0.0) for hit in hits]


def target_question(answer: str, targets: Sequence[str]) -> str:
    expected = " | ".join(t for t in targets if t.strip())
    return (
        f"Expected answer (any of these phrasings): {expected}\n"
        f"The assistant's reply: {answer}\n"
        "Does the reply state the expected answer, or the same thing in other words?"
    )


class EndpointPreferenceJudge:
    """PrefEval's two questions, asked of the endpoint; violation only when not acknowledged (its rule)."""

    def __init__(self, endpoint: ChatEndpoint) -> None:
        self.endpoint = endpoint

    def describe(self) -> str:
        return self.endpoint.describe()

    def judge(self, answer: str, case: PreferenceCase) -> PreferenceVerdict:
        acknowledged = self.endpoint.ask(ack_question(answer, case))
        violated = not acknowledged and self.endpoint.ask(violation_question(answer, case))
        return PreferenceVerdict(acknowledged, violated, None, None, None)


def ack_question(answer: str, case: PreferenceCase) -> str:
    return (
        f"The user's preference: {case.preference}\n"
        f"The assistant's reply to the user's request: {answer}\n"
        "Does the reply take this preference into account, by mentioning it or by clearly following it?"
    )


def violation_question(answer: str, case: PreferenceCase) -> str:
    return (
        f"The user's preference: {case.preference}\n"
        f"The assistant's reply to the user's request: {answer}\n"
        "Does the reply recommend or suggest something that goes against this preference?"
    )
