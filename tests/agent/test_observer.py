"""The observe step runs off the reply's path: submit returns at once, flush waits, failures are contained."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from agent.observer import Observer
from memory.observations import Candidate, Observation, Polarity


class GatedExtractor:
    """Extracts one candidate per text, but only once the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    def extract(self, text: str) -> list[Candidate]:
        assert self.gate.wait(timeout=10)
        if "boom" in text:
            raise ValueError("extractor failed on purpose")
        return [Candidate(evidence=text, aspect="topic", value=text, polarity=Polarity.LIKES, confidence=0.9)]


class ListSink:
    def __init__(self) -> None:
        self.stored: list[Observation] = []

    def add_many(self, observations: Sequence[Observation]) -> list[Observation]:
        self.stored.extend(observations)
        return list(observations)


def test_submit_does_not_wait_for_extraction() -> None:
    extractor, sink = GatedExtractor(), ListSink()
    observer = Observer(extractor, sink)
    observer.submit("u", "t", 0, "I like tea.")
    assert sink.stored == []  # the extractor is still blocked, yet submit returned
    extractor.gate.set()
    observer.flush(timeout=10)
    assert [o.evidence for o in sink.stored] == ["I like tea."]
    assert (sink.stored[0].user_id, sink.stored[0].thread_id, sink.stored[0].turn) == ("u", "t", 0)
    observer.close()


def test_turns_are_stored_in_order_and_a_failure_is_contained() -> None:
    extractor, sink = GatedExtractor(), ListSink()
    observer = Observer(extractor, sink)
    for turn, text in enumerate(["first", "boom", "third"]):
        observer.submit("u", "t", turn, text)
    extractor.gate.set()
    observer.flush(timeout=10)
    assert [o.evidence for o in sink.stored] == ["first", "third"]
    observer.close()
