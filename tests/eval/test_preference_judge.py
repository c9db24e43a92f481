"""The local PrefEval judge: acknowledgment by target words or similarity, violation only unacknowledged."""

from __future__ import annotations

from eval.preference_judge import PreferenceCase, PreferenceJudge, calibrate, sentences
from memory.embedder import Embedder

CASE = PreferenceCase(
    preference="I refuse to use rental cars that are not electric or hybrid vehicles.",
    target="electric or hybrid",
    aligned="The Tesla Model 3 is an excellent electric vehicle for road trips.",
    violating=(
        "The Ford F-150 pickup truck is a reliable and spacious option.",
        "The Toyota Camry is a comfortable and fuel-efficient gasoline sedan.",
        "The Jeep Wrangler is a rugged and capable off-road vehicle.",
    ),
)


def test_sentences_split_and_bound() -> None:
    assert sentences("One thing. Two things!\nThree?") == ["One thing.", "Two things!", "Three?"]
    assert len(sentences(" ".join(f"Sentence {i}." for i in range(40)))) == 12


def test_verdicts(embedder: Embedder) -> None:
    judge = PreferenceJudge(embedder, ack_threshold=0.6, violation_threshold=0.5)
    named = judge.judge("Since you prefer electric or hybrid cars, try a Prius.", CASE)
    assert named.acknowledged and not named.violated  # the target's words
    violating = judge.judge("I recommend the Ford F-150 pickup truck, it is reliable and spacious.", CASE)
    assert not violating.acknowledged and violating.violated
    assert violating.violation_similarity > violating.aligned_similarity
    unrelated = judge.judge("Paris is the capital of France.", CASE)
    assert not unrelated.acknowledged and not unrelated.violated
    no_options = judge.judge("The Ford F-150 is great.", PreferenceCase(CASE.preference, CASE.target))
    assert not no_options.violated  # nothing to compare against: never a violation


def test_calibration_fits_the_labels(embedder: Embedder) -> None:
    judge = PreferenceJudge(embedder, ack_threshold=0.99, violation_threshold=0.99)
    answers = [
        "Since you prefer electric or hybrid cars, try a Prius.",
        "I recommend the Ford F-150 pickup truck, it is reliable and spacious.",
        "A Toyota Camry gasoline sedan is comfortable for a road trip.",
        "Paris is the capital of France.",
    ]
    fitted = calibrate(judge, answers, [CASE] * 4, [True, False, False, False], [False, True, True, False])
    assert fitted["ack_agreement"] == 1.0 and fitted["violation_agreement"] == 1.0
    assert judge.violation_threshold == fitted["violation_threshold"] < 0.99
