"""Behaviour of the cue-and-embedding preference extractor on explicit, implicit and non-preference turns."""

from __future__ import annotations

import pytest

from memory.embedder import Embedder
from memory.extraction import CueExtractor, Extractor
from memory.extraction.cues import find_cue, is_request
from memory.extraction.sentences import looks_like_code, split_clauses, split_sentences
from memory.observations import Polarity


@pytest.fixture(scope="module")
def extractor(embedder: Embedder) -> CueExtractor:
    return CueExtractor(embedder)


def test_split_sentences_drops_code_and_keeps_prose() -> None:
    text = "Hi there! I prefer tea.\ndef f(x): return {x: [1, 2]}\nWhat now?"
    assert split_sentences(text) == ["Hi there!", "I prefer tea.", "What now?"]


def test_split_clauses_separates_preference_from_question() -> None:
    assert split_clauses("Since I'm vegan, what should I cook?") == ["Since I'm vegan", "what should I cook?"]


def test_looks_like_code() -> None:
    assert looks_like_code('resource "kubernetes_ingress" "example" {')
    assert not looks_like_code("I usually take the train to work.")


@pytest.mark.parametrize(
    ("clause", "polarity"),
    [
        ("I prefer aisle seats", Polarity.LIKES),
        ("I can't stand crowded beaches", Polarity.AVOIDS),
        ("I have a fear of heights", Polarity.AVOIDS),
        ("I'm not a fan of horror movies", Polarity.AVOIDS),
        ("I always steer clear of fried food", Polarity.AVOIDS),
    ],
)
def test_find_cue_polarity(clause: str, polarity: Polarity) -> None:
    match = find_cue(clause)
    assert match is not None and match.cue.polarity is polarity


def test_reactions_and_neutral_negations_are_not_cues() -> None:
    assert find_cue("I love the idea of a mood board") is None
    assert find_cue("I don't know what this code does") is None


def test_requests_are_recognised() -> None:
    assert is_request("Can you recommend a hotel?")
    assert is_request("write a program that sorts numbers")
    assert not is_request("I can't stand loud music")


def test_is_an_extractor(extractor: CueExtractor) -> None:
    assert isinstance(extractor, Extractor)


def test_explicit_preference(extractor: CueExtractor) -> None:
    [cand] = extractor.extract("Any tips for my flight? I prefer aisle seats on long flights.")
    assert cand.polarity is Polarity.LIKES
    assert cand.explicit
    assert "aisle seats" in cand.value
    assert cand.evidence == "I prefer aisle seats on long flights."
    assert 0.0 <= cand.confidence <= 1.0


@pytest.mark.parametrize(
    ("text", "aspect"),
    [
        ("I get seasick easily, so what should we do on the coast?", None),
        ("My kids are vegan. Any ideas for dinner?", "diet"),
        ("I have a fear of heights, so no rooftop bars please.", None),
        ("Honestly, I can't stand those digital courses.", "learning format"),
    ],
)
def test_implicit_preferences_are_avoidances(extractor: CueExtractor, text: str, aspect: str | None) -> None:
    cands = extractor.extract(text)
    assert cands, f"nothing extracted from {text!r}"
    assert cands[0].polarity is Polarity.AVOIDS
    if aspect is not None:
        assert cands[0].aspect == aspect


@pytest.mark.parametrize(
    "text",
    [
        "Can you recommend a good hotel in Lisbon?",
        "Write a Python program that reverses a string.",
        "Thanks, that was helpful! What else should I know?",
        "I love that idea, now make it shorter.",
        "What is the capital of Peru?",
    ],
)
def test_requests_yield_nothing(extractor: CueExtractor, text: str) -> None:
    assert extractor.extract(text) == []


def test_extract_many_matches_extract(extractor: CueExtractor) -> None:
    texts = ["I prefer aisle seats.", "What time is it?", "I'm allergic to shellfish."]
    assert extractor.extract_many(texts) == [extractor.extract(t) for t in texts]


def test_threshold_is_validated(embedder: Embedder) -> None:
    with pytest.raises(ValueError, match="threshold"):
        CueExtractor(embedder, threshold=1.5)


def test_higher_threshold_extracts_no_more(embedder: Embedder) -> None:
    text = "I usually go for quiet hotels. I tend to read a lot. I hate queues."
    loose = CueExtractor(embedder, threshold=0.3).extract(text)
    strict = CueExtractor(embedder, threshold=0.95).extract(text)
    assert len(strict) <= len(loose)
    assert len(loose) >= 2


@pytest.mark.parametrize(
    ("text", "aspect"),
    [
        ("I work as a paramedic in the city.", "occupation"),
        ("I grew up in a fishing village.", "where I live"),
        ("I have three daughters.", "family"),
        ("I'm 52 years old.", "age"),
        ("My sister is a lawyer.", "family"),
        ("I study marine biology.", "education"),
        ("I hope to become a pilot someday.", "goals"),
        ("My name is Ingrid.", "name"),
    ],
)
def test_self_descriptions_are_facts_about_the_user(extractor: CueExtractor, text: str, aspect: str) -> None:
    [cand] = extractor.extract(text)
    assert cand.polarity is Polarity.IS
    assert cand.aspect == aspect
    assert cand.summary().startswith(f"{aspect}: is ")


def test_a_fact_keeps_its_whole_clause_as_value(extractor: CueExtractor) -> None:
    """The cue of a self-description often holds the value itself: "two sons", not "sons"."""
    [sons] = extractor.extract("I have two sons.")
    [age] = extractor.extract("I'm 34 years old.")
    assert sons.value == "two sons"
    assert age.value == "34 years old"


def test_a_value_loses_the_whole_contracted_subject(extractor: CueExtractor) -> None:
    [cand] = extractor.extract("I'm vegan.")
    assert cand.value == "vegan"


@pytest.mark.parametrize(
    "text",
    [
        "I have a question about pandas dataframes.",
        "I have a list of numbers and need the largest.",
        "I run the script and it crashes.",
        "I read the docs but it still fails.",
        "I'm a beginner, can you explain recursion?",
        "I'm working on the report for tomorrow.",
        "I've been wondering about advancing my career.",
    ],
)
def test_what_the_user_brings_to_the_chat_is_not_about_them(extractor: CueExtractor, text: str) -> None:
    assert extractor.extract(text) == []


def test_pastimes_are_things_the_user_likes(extractor: CueExtractor) -> None:
    [cand] = extractor.extract("In my spare time I build model ships.")
    assert cand.polarity is Polarity.LIKES
