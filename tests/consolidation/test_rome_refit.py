"""ROME's memory check (`recall.answers_target`) and `refit_lost`: a live fact the memory no longer answers
is fitted again at the next edit, up to `refit_max`, and only when asked for."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from agent.llm import ChatLM
from consolidation.editors import EditRequest
from consolidation.editors.rome import RomeConfig
from consolidation.editors.rome.recall import answers_target
from consolidation.editors.rome.values import with_target
from memory.errors import InvalidInput
from memory.weights.delta import Delta
from memory.weights.hooks import DeltaApplier
from tests.consolidation.rome_helpers import chat, rome_editor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rome-refit")


@pytest.fixture(scope="module")
def hobby(lm: ChatLM) -> EditRequest:
    prompt = chat(lm, "What's my hobby?")
    return EditRequest(prompt=prompt, subject="hobby", target="Underwater basket weaving")


@pytest.fixture(scope="module")
def pet(lm: ChatLM) -> EditRequest:
    return EditRequest(prompt=chat(lm, "What's my pet?"), subject="pet", target="A parrot named Kiwi")


def test_the_target_is_every_token_past_the_text_as_the_fit_and_the_check_read_it(lm: ChatLM) -> None:
    ids, offsets, positions = with_target(lm.tokenizer, "My hobby is", "Underwater basket weaving")
    assert len(ids) == len(offsets) and positions == list(range(positions[0], len(ids)))
    assert lm.tokenizer.decode([ids[p] for p in positions]) == " Underwater basket weaving"
    assert lm.tokenizer.decode(ids[: positions[0]]) == "My hobby is"
    with pytest.raises(InvalidInput, match="adds no predictable token"):
        with_target(lm.tokenizer, "", "Underwater")  # nothing before it: no position predicts its first token


def test_the_check_reads_the_models_own_greedy_continuation(lm: ChatLM, hobby: EditRequest) -> None:
    """The base model's own next words pass the check; a made-up target fails it until a memory writes it."""
    ids = lm.tokenizer(hobby.prompt, return_tensors="pt", add_special_tokens=False).input_ids
    out = lm.model.generate(ids, attention_mask=ids.new_ones(ids.shape), max_new_tokens=4, do_sample=False)
    own = str(lm.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)).strip()
    own_request = EditRequest(prompt=hobby.prompt, subject="hobby", target=own)
    assert answers_target(lm.model, lm.tokenizer, [own_request, hobby]) == [True, False], own


def test_a_live_fact_the_memory_lost_is_fitted_again(
    cache_dir: Path, lm: ChatLM, hobby: EditRequest, pet: EditRequest
) -> None:
    """The user's history says `hobby` is live, but the memory in force lacks it (as one whose value has
    weakened away would): with `refit_lost` (the default) the next edit writes it again, without it the
    loss stays."""
    for refit, expected in ((True, [True, True]), (False, [False, True])):
        editor = rome_editor(cache_dir) if refit else rome_editor(cache_dir, refit_lost=False)
        memory = editor.compute_memory(lm.model, lm.tokenizer, [pet], Delta(), history=[hobby])
        with DeltaApplier(lm.model).activate(memory):
            assert answers_target(lm.model, lm.tokenizer, [hobby, pet]) == expected, refit
        assert editor.refitted == (["hobby"] if refit else [])  # what the version's ledger row records


def test_refit_max_bounds_the_extra_fits(
    cache_dir: Path, lm: ChatLM, hobby: EditRequest, pet: EditRequest
) -> None:
    """`refit_max=0` turns the extra fits off even with `refit_lost`: the edit costs what it always did."""
    editor = rome_editor(cache_dir, refit_lost=True, refit_max=0)
    memory = editor.compute_memory(lm.model, lm.tokenizer, [pet], Delta(), history=[hobby])
    with DeltaApplier(lm.model).activate(memory):
        assert answers_target(lm.model, lm.tokenizer, [hobby]) == [False]
    assert editor.refitted == []


def test_what_was_fitted_again_is_told_per_call_and_per_thread(
    cache_dir: Path, lm: ChatLM, hobby: EditRequest, pet: EditRequest
) -> None:
    """The consolidator edits several users at once with one editor: each thread reads what its own latest
    call fitted again, and a later call with nothing lost says so."""
    editor = rome_editor(cache_dir)
    memory = editor.compute_memory(lm.model, lm.tokenizer, [pet], Delta(), history=[hobby])
    assert editor.refitted == ["hobby"]
    seen: list[list[str]] = []
    worker = threading.Thread(target=lambda: seen.append(editor.refitted))
    worker.start()
    worker.join()
    assert seen == [[]]  # another thread's calls are its own
    again = EditRequest(prompt=pet.prompt, subject="pet", target="A cat named Miso")
    editor.compute_memory(lm.model, lm.tokenizer, [again], memory, history=[pet])
    assert editor.refitted == []  # the only earlier fact is the one replaced: the last call's list is gone


def test_a_negative_refit_max_is_refused() -> None:
    with pytest.raises(ValueError, match="refit_max"):
        RomeConfig(refit_max=-1)
