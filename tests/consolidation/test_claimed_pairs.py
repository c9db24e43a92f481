"""Synonym pairs of related facts never write one subject twice (`claimed_pairs`).

UPQA's cluster records for *job* and *profession* list each other's subject and share "occupation" and
"career"; written as they came, the job's pair about "profession" replaced the user's profession."""

from __future__ import annotations

from consolidation.editors.base import EditRequest, claimed_pairs, cluster_pairs
from consolidation.editors.training import training_pairs

JOB = EditRequest(
    prompt="What's my {}?",
    subject="job",
    target="Cashier",
    subject_synonyms=["occupation", "Profession", "career", "work"],
    target_synonyms=["Checkout clerk"],
)
PROFESSION = EditRequest(
    prompt="What's my {}?",
    subject="profession",
    target="Nurse",
    subject_synonyms=["occupation", "career", "job", "vocation"],
    target_synonyms=["Registered nurse"],
)


def _subjects(pairs: list[EditRequest]) -> list[str]:
    return [p.subject for p in pairs]


def test_a_synonym_never_takes_another_facts_subject_and_shared_ones_go_to_the_later_fact() -> None:
    job, profession = claimed_pairs([JOB, PROFESSION], cluster_size=3)
    assert _subjects(profession) == ["profession", "occupation", "career"]  # "job" is the job's own
    assert _subjects(job) == ["job", "work"]  # "Profession" blocked whatever its case; the rest taken
    assert [p.target for p in job] == ["Cashier", "Checkout clerk"]


def test_order_decides_who_gets_a_shared_synonym() -> None:
    profession, job = claimed_pairs([PROFESSION, JOB], cluster_size=3)
    assert _subjects(job) == ["job", "occupation", "career"]
    assert _subjects(profession) == ["profession", "vocation"]


def test_subjects_held_elsewhere_are_skipped_and_a_lone_request_is_unchanged() -> None:
    (job,) = claimed_pairs([JOB], cluster_size=3, taken={"occupation"})
    assert _subjects(job) == ["job", "Profession", "career"]
    (alone,) = claimed_pairs([JOB], cluster_size=3)
    assert alone == cluster_pairs(JOB, 3)
    (own,) = claimed_pairs([JOB], cluster_size=2, taken={"job"})  # a fact's own subject stays its own
    assert _subjects(own) == ["job", "occupation"]


def test_gradient_editors_learn_the_claimed_pairs() -> None:
    texts = training_pairs([JOB, PROFESSION], cluster_size=2)
    assert texts == [
        ("What's my job?", "Cashier"),
        ("What's my career?", "Checkout clerk"),
        ("What's my profession?", "Nurse"),
        ("What's my occupation?", "Registered nurse"),
    ]
