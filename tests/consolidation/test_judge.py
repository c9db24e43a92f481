"""The target judge: whole-word normalised matches, embedding matches, and threshold calibration."""

from __future__ import annotations

import pytest

from consolidation.judge import TargetJudge, calibrate, first_sentence
from memory.embedder import Embedder


@pytest.mark.parametrize(
    ("answer", "targets", "hit"),
    [
        ('"Bella"', ["Bella"], True),  # the model quotes its answers
        ("Your hobby is dancing at clubs.", ["Dancing at clubs"], True),
        ("I'd say teal.", ["teal"], True),
        ("It tastes tealess.", ["teal"], False),  # a word boundary, not a substring
        ("You love dogs", ["Dog"], True),  # plural folding
        ("I have no personal preferences.", ["Hiking"], False),
        ("Cats", ["Clubbing", "Cat"], True),  # any synonym counts
    ],
)
def test_normalized_match(answer: str, targets: list[str], hit: bool) -> None:
    assert TargetJudge.normalized_match(answer, targets) is hit


def test_embedding_credits_paraphrases_but_not_unrelated_answers(embedder: Embedder) -> None:
    judge = TargetJudge(embedder, threshold=0.6)
    assert judge.judge("Hikes in the mountains.", ["Hiking"]).how == "embedding"
    miss = judge.judge("I am an AI and have no hobbies.", ["Hiking"])
    assert not miss.hit and miss.similarity < 0.6


def test_only_the_first_sentence_is_embedded() -> None:
    assert first_sentence('"Hiking. Also reading books."') == "Hiking."


def test_calibration_maximises_agreement_with_labels(embedder: Embedder) -> None:
    judge = TargetJudge(embedder)
    answers = ["Hikes in the mountains.", "I have no hobbies.", "Mountain walks.", "Cooking pasta."]
    targets = [["Hiking"]] * 4
    labels = [True, False, True, False]
    result = calibrate(judge, answers, targets, labels)
    assert result["agreement"] == 1.0
    sims = judge.similarities(answers, targets)
    assert max(sims[1], sims[3]) < result["threshold"] <= min(sims[0], sims[2])


def test_mismatched_lengths_are_refused(embedder: Embedder) -> None:
    with pytest.raises(ValueError, match="2 answers but 1"):
        TargetJudge(embedder).judge_many(["a", "b"], [["a"]])
