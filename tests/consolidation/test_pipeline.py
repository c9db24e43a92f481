"""The consolidation pipeline on the real model, a real chromadb and a real drift gate (small probes):
stable preferences reach the weights exactly once, a contradiction replaces the old edit, a failing gate
leaves everything in retrieval, and statuses follow the version in force through a rollback."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agent.llm import ChatLM
from agent.prompts import recall_context
from consolidation.editors.rome.joint import SHARED_LABEL, held_label, label_for
from consolidation.editors.rome.keys import text_inputs
from consolidation.metrics import greedy_answers
from consolidation.pipeline import _request_of
from consolidation.preferences.requests import TEMPLATES
from consolidation.runs import DONE, SKIPPED, RunLog
from consolidation.scheduler import ConsolidationService
from memory.embedder import Embedder
from memory.observations import Polarity, Status
from tests.consolidation.world import USER, World, make_world, observe

pytestmark = pytest.mark.slow


def _answer(w: World, aspect: str) -> str:
    """The user's answer, from weights alone, to the question the edit about `aspect` was made with."""
    with w.weights.applied(USER):
        return greedy_answers(w.lm.model, w.lm.tokenizer, [TEMPLATES[Polarity.LIKES][0].format(aspect)])[0]


def _statuses(w: World) -> dict[str, Status]:
    return {o.id: o.status for o in w.store.list(USER)}


def test_stable_preferences_are_committed_once_and_answered_from_weights(world: World) -> None:
    w = world
    hobby = [observe(w, "hobbies", "pottery", "s1", 1), observe(w, "hobbies", "pottery classes", "s2", 2)]
    pet = [observe(w, "pets", "parrots", "s2", 3), observe(w, "pets", "a parrot", "s3", 4)]
    lonely = observe(w, "music", "opera", "s3", 5)  # one implicit observation: stays in retrieval

    first = w.consolidator.run(USER)
    assert first.count("committed") == 2 and first.version == 1, first.outcomes
    assert [o.action for o in first.outcomes if "music" in o.preference] == ["waiting"]
    statuses = _statuses(w)
    assert all(statuses[o.id] is Status.IN_WEIGHTS for o in hobby + pet)
    assert statuses[lonely.id] is Status.PENDING
    info = w.weights.versions(USER)[0]
    assert info.drift is not None and info.drift["passed"]  # the gate's report is stored with the version
    assert sorted(sorted(e["targets"]) for e in info.requests) == [
        ["a parrot", "parrots"],
        ["pottery", "pottery classes"],
    ]
    assert w.judge.judge(_answer(w, "hobbies"), ["pottery", "pottery classes"]).hit
    assert w.judge.judge(_answer(w, "pets"), ["parrots", "a parrot"]).hit

    second = w.consolidator.run(USER)  # nothing new: no version, no status change
    assert second.version is None and second.count("committed") == 0 and second.reconciled == 0
    assert w.weights.head(USER) == 1 and _statuses(w) == statuses


def test_a_contradiction_replaces_the_edit_in_weights_and_retrieval(world: World) -> None:
    w = world
    steak = [observe(w, "diet", "steak", "s1", 1), observe(w, "diet", "steak dinners", "s2", 2)]
    assert w.consolidator.run(USER).count("committed") == 1
    subject = w.weights.versions(USER)[0].requests[0]["subject"]
    veg = observe(w, "diet", "vegetarian food", "s3", 10, explicit=True, confidence=0.9)

    run = w.consolidator.run(USER)
    assert run.count("committed") == 1 and run.version == 2, run.outcomes
    statuses = _statuses(w)
    assert all(statuses[o.id] is Status.SUPERSEDED for o in steak) and statuses[veg.id] is Status.IN_WEIGHTS
    entry = w.weights.versions(USER)[1].requests[0]
    assert entry["subject"] == subject and set(entry["supersedes"]) == {o.id for o in steak}
    answer = _answer(w, subject)
    assert w.judge.judge(answer, ["vegetarian food", "vegetarian"]).hit and "steak" not in answer.lower()
    labels = {u.label for u in w.weights.delta(USER)}
    # replaced, not stacked: the fact, the tokens after its subject, and the shared context pins
    assert labels == {label_for(subject), held_label(label_for(subject)), SHARED_LABEL}


def test_rollback_puts_observations_back_in_retrieval(world: World) -> None:
    w = world
    obs = [observe(w, "sports", "tennis", "s1", 1), observe(w, "sports", "playing tennis", "s2", 2)]
    assert w.consolidator.run(USER).version == 1
    w.weights.revert(USER, 0)
    assert w.consolidator.reconcile(USER) == 2
    assert all(s is Status.PENDING for s in _statuses(w).values())
    assert w.consolidator.run(USER).version == 2  # and consolidating again commits it once more
    assert {o.id for o in obs} == {
        i for e in w.weights.versions(USER)[-1].requests for i in e["observations"]
    }


def test_a_failing_drift_check_leaves_everything_in_retrieval(
    tmp_path: Path, lm: ChatLM, embedder: Embedder, rome_cache: Path
) -> None:
    # any edit fails: it grows the edited matrix (scoped, ROME's default, it is held to the scoped bound),
    # and a scoped memory may leave the neutral prompts' KL at 0
    bounds = {"max_norm_growth": 0.0, "max_scoped_norm_growth": 0.0, "max_locality_kl": 0.0}
    for w in make_world(tmp_path, lm, embedder, rome_cache, **bounds):
        obs = [observe(w, "travel activities", "scuba diving", "s1", 1)]
        obs.append(observe(w, "travel activities", "diving trips", "s2", 2))
        run = w.consolidator.run(USER)
        assert run.version is None and run.count("rejected") == 1
        assert "drift guard" in next(o.reason for o in run.outcomes if o.action == "rejected")
        assert w.weights.head(USER) == 0
        assert all(s is Status.PENDING for s in _statuses(w).values())


def test_runs_are_recorded_and_one_user_runs_once_at_a_time(world: World, tmp_path: Path) -> None:
    w = world
    observe(w, "books", "mystery novels", "s1", 1)
    observe(w, "books", "detective stories", "s2", 2)
    runs = RunLog(tmp_path / "runs.sqlite")
    service = ConsolidationService(w.consolidator, runs, tmp_path / "locks")
    assert service.due_users() == [USER]
    with service.locks.hold(USER):  # another consolidation of this user holds the lock
        busy = service.run_now(USER)
    assert busy.status == SKIPPED and "already running" in (busy.error or "")
    done = service.run_now(USER)
    assert done.status == DONE and done.result is not None and done.result["committed"] == 1
    assert [r.id for r in runs.list(USER)] == [done.id, busy.id]
    assert service.due_users() == []
    runs.close()


def test_a_repeated_preference_is_absorbed_not_edited_again(world: World) -> None:
    w = world
    observe(w, "hobbies", "knitting", "s1", 1)
    observe(w, "hobbies", "knitting scarves", "s2", 2)
    assert w.consolidator.run(USER).version == 1
    again = observe(w, "hobbies", "knitting", "s3", 3)  # she says it once more

    run = w.consolidator.run(USER)
    assert run.version is None and w.weights.head(USER) == 1  # no edit, no drift check, no version
    (outcome,) = run.outcomes
    assert outcome.action == "in_weights" and "absorbed" in outcome.reason
    assert w.store.get(USER, again.id).status is Status.IN_WEIGHTS  # it leaves recall too
    assert w.consolidator.run(USER).reconciled == 0  # and reconciling agrees

    w.weights.revert(USER, 0)  # rolling the version back returns the absorbed repeat to retrieval as well
    assert w.consolidator.reconcile(USER) == 3
    assert w.store.get(USER, again.id).status is Status.PENDING


def test_an_edit_holds_the_words_that_stated_its_preference_as_recall_shows_them(world: World) -> None:
    """With a recall renderer, the edit's request holds its observations' words in the system turn recall
    puts them in; the ledger keeps them (a refit rebuilds the same request), and under the committed memory
    the edited module reads every token of that turn as the base model did."""
    w = world
    w.consolidator.recall_render = lambda lines: recall_context(w.lm.tokenizer, lines)
    observe(w, "hobbies", "pottery", "s1", 1)
    observe(w, "hobbies", "pottery classes", "s2", 2)
    assert w.consolidator.run(USER).version == 1

    (entry,) = w.weights.versions(USER)[0].requests
    expected = recall_context(w.lm.tokenizer, ['"(hobbies) pottery"', '"(hobbies) pottery classes"'])
    assert entry["held_contexts"] == [expected]
    assert _request_of(entry).held_contexts == [expected]
    module_name = w.consolidator.editor.config.module_name()  # type: ignore[attr-defined]
    module = w.lm.model.get_submodule(module_name)
    x = text_inputs(w.lm.model, w.lm.tokenizer, module_name, [expected])
    with torch.no_grad():
        base = module(x)
        with w.weights.applied(USER):
            served = module(x)
    assert float(((served - base).norm(dim=-1) / base.norm(dim=-1)).max()) < 0.02
    assert w.judge.judge(_answer(w, "hobbies"), ["pottery", "pottery classes"]).hit
