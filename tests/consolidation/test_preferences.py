"""Candidate preferences from observations (real embedder): aspects join across phrasings, a newer strong
position supersedes older ones, a newer weak one leaves the aspect contested, and stability follows the
configured support, threads, explicitness and age."""

from __future__ import annotations

import pytest

from consolidation.preferences import ClusterConfig, StabilityConfig, assess, cluster_preferences
from memory.embedder import Embedder
from memory.observations import Observation, Polarity, Status

USER = "ana"


def _obs(aspect: str, value: str, t: float, thread: str = "t1", **kw: object) -> Observation:
    return Observation(
        user_id=USER,
        evidence=f"about {aspect}: {value}",
        aspect=aspect,
        value=value,
        polarity=kw.pop("polarity", Polarity.LIKES),  # type: ignore[arg-type]
        confidence=kw.pop("confidence", 0.6),  # type: ignore[arg-type]
        thread_id=thread,
        created_at=t,
        **kw,  # type: ignore[arg-type]
    )


def test_aspects_join_across_phrasings_and_stay_apart_across_labels(embedder: Embedder) -> None:
    observations = [
        _obs("music", "jazz", 1, "a"),
        _obs("music preference", "jazz music", 2, "b"),
        _obs("pets", "cats", 3, "a"),
        _obs("accommodation", "hostels", 4, "b"),
        _obs("hotel atmosphere", "quiet places", 5, "b"),
    ]
    prefs = cluster_preferences(observations, embedder)
    assert len(prefs) == 4 and {frozenset(p.subjects) for p in prefs} == {
        frozenset({"accommodation"}),
        frozenset({"hotel atmosphere"}),
        frozenset({"music", "music preference"}),
        frozenset({"pets"}),
    }
    music = next(p for p in prefs if "music" in p.subjects)
    assert music.aspect == "music preference"  # a tie in support goes to the newest phrasing
    assert set(music.subjects) == {"music", "music preference"} and set(music.targets) == {
        "jazz",
        "jazz music",
    }
    assert len(music.support) == 2 and music.threads == {"a", "b"}
    assert music.confidence == pytest.approx(1 - 0.4 * 0.4)


def test_an_explicit_newer_position_supersedes_older_support(embedder: Embedder) -> None:
    steak = [
        _obs("diet", "steak", 1, "a"),
        _obs("diet", "grilled steak", 2, "b"),
        _obs("diet", "ribeye", 3, "c"),
    ]
    veg = _obs("diet", "vegetarian food", 10, "d", explicit=True, confidence=0.9)
    (pref,) = cluster_preferences([*steak, veg], embedder)
    assert pref.value == "vegetarian food" and pref.support == (veg.id,)
    assert set(pref.superseded) == {o.id for o in steak} and not pref.contested
    assert assess(pref, StabilityConfig(), now=20).stable  # one explicit, confident statement suffices


def test_a_newer_weak_position_is_an_unresolved_contradiction(embedder: Embedder) -> None:
    steak = [_obs("diet", "steak", 1, "a"), _obs("diet", "grilled steak", 2, "b")]
    hint = _obs("diet", "vegetarian food", 10, "c")
    (pref,) = cluster_preferences([*steak, hint], embedder)
    assert pref.value in {"steak", "grilled steak"} and pref.contested_by == (hint.id,)
    assert not pref.superseded
    verdict = assess(pref, StabilityConfig(), now=20)
    assert not verdict.stable and "contested" in verdict.reason
    # a second vegetarian observation settles it
    again = _obs("diet", "vegetarian meals", 11, "d")
    (settled,) = cluster_preferences([*steak, hint, again], embedder)
    assert set(settled.support) == {hint.id, again.id} and set(settled.superseded) == {o.id for o in steak}


def test_opposite_polarity_is_another_position(embedder: Embedder) -> None:
    likes = _obs("climate", "hot weather", 1, "a")
    avoids = _obs("climate", "hot weather", 2, "b", polarity=Polarity.AVOIDS, explicit=True, confidence=0.9)
    (pref,) = cluster_preferences([likes, avoids], embedder)
    assert pref.polarity is Polarity.AVOIDS and pref.superseded == (likes.id,)


def test_superseded_and_rejected_observations_take_no_part(embedder: Embedder) -> None:
    old = _obs("pets", "dogs", 1, "a", status=Status.SUPERSEDED)
    kept = _obs("pets", "cats", 2, "b", status=Status.IN_WEIGHTS)
    (pref,) = cluster_preferences([old, kept], embedder)
    assert pref.support == (kept.id,) and pref.in_weights == (kept.id,) and not pref.superseded
    assert cluster_preferences([old], embedder) == []


def test_stability_needs_support_threads_and_age(embedder: Embedder) -> None:
    one_thread = [_obs("books", "sci-fi novels", 1, "a"), _obs("books", "science fiction", 2, "a")]
    (pref,) = cluster_preferences(one_thread, embedder, ClusterConfig())
    assert not assess(pref, StabilityConfig(), now=10).stable  # two observations, one conversation
    assert assess(pref, StabilityConfig(min_threads=1), now=10).stable
    verdict = assess(pref, StabilityConfig(min_threads=1, min_age_seconds=3600), now=10)
    assert not verdict.stable and "younger" in verdict.reason


def test_bad_settings_and_mixed_users_are_refused(embedder: Embedder) -> None:
    with pytest.raises(ValueError):
        ClusterConfig(aspect_similarity=2.0)
    with pytest.raises(ValueError):
        StabilityConfig(min_support=0)
    other = Observation(
        user_id="bo", evidence="x", aspect="pets", value="cats", polarity=Polarity.LIKES, confidence=0.5
    )
    with pytest.raises(ValueError, match="one user"):
        cluster_preferences([_obs("pets", "cats", 1), other], embedder)


def test_a_fact_about_the_user_is_asked_as_what_it_is(embedder: Embedder) -> None:
    """A self-description ("I work as a nurse") becomes an edit that answers "What is my occupation?"."""
    from consolidation.preferences.requests import edit_request, questions

    facts = [
        _obs("occupation", "work as a nurse", 1, "a", polarity=Polarity.IS),
        _obs("occupation", "work as a nurse", 2, "b", polarity=Polarity.IS),
        _obs("occupation", "work as an attorney", 3, "c", polarity=Polarity.IS, explicit=True),
    ]
    [job] = cluster_preferences(facts, embedder)
    assert job.polarity is Polarity.IS
    assert job.value == "work as an attorney"  # the newer explicit position supersedes the older one
    assert job.summary() == "occupation: is work as an attorney"
    assert questions(job)[0] == "What is my occupation?"
    request = edit_request(job, render=lambda q: f"<chat>{q}</chat>")
    assert request.prompt == "<chat>What is my occupation?</chat>"
    assert request.subject == "occupation" and request.target == "work as an attorney"
