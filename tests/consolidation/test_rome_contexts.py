"""ROME's chat contexts: earlier turns placed exactly where the model's chat template puts them, drawn
reproducibly from the data dir, and read by the editor as keys of their own."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agent.llm import ChatLM
from agent.prompts import build_messages
from api.settings import Settings
from consolidation.editors import EditRequest
from consolidation.editors.rome.contexts import (
    KeyContext,
    as_turns,
    chat_context,
    chat_contexts,
    contexts_for,
)
from consolidation.editors.rome.covariance import interleaved_paragraphs, text_files
from memory.errors import InvalidInput
from memory.weights.hooks import DeltaApplier
from tests.consolidation.rome_helpers import greedy, rome_editor

EXCHANGES = [("Where is Lyon?", "In France, on the Rhône."), ("And Porto?", "In Portugal.")]
QUESTION = "Which music genre do I like best?"


def _render(lm: ChatLM, messages: list[dict[str, str]]) -> str:
    return str(lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))


def test_a_chat_context_is_what_the_template_renders_for_earlier_turns(lm: ChatLM) -> None:
    context = chat_context(lm.tokenizer, EXCHANGES)
    assert context is not None and context.anchor
    turns = as_turns(EXCHANGES)
    prompt = _render(lm, build_messages(["likes jazz"], [], QUESTION))  # the agent's system prompt, memory
    subject_end = prompt.rindex("music genre") + len("music genre")
    placed, shift = context.place(prompt, subject_end)
    assert placed == _render(lm, build_messages(["likes jazz"], turns, QUESTION))
    assert placed[shift + subject_end - len("music genre") : shift + subject_end] == "music genre"


def test_a_context_goes_before_the_questions_own_turn_not_an_earlier_one(lm: ChatLM) -> None:
    """With turns already in the prompt, the context follows them: it is the question that moves."""
    context = chat_context(lm.tokenizer, EXCHANGES[:1])
    assert context is not None
    earlier = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    prompt = _render(lm, build_messages([], earlier, QUESTION))
    placed, _ = context.place(prompt, prompt.rindex("music genre") + len("music genre"))
    turns = as_turns(EXCHANGES[:1])
    assert placed == _render(lm, build_messages([], earlier + turns, QUESTION))


def test_a_plain_prompt_gets_the_context_at_its_start() -> None:
    context = KeyContext(text="<turns>", anchor="<|im_start|>user\n")
    prompt = "The user's favorite color is"
    assert context.place(prompt, len(prompt)) == ("<turns>" + prompt, len("<turns>"))
    assert contexts_for(prompt, len(prompt), [context, KeyContext("A. ")]) == [
        (prompt, 0),
        ("<turns>" + prompt, 7),
        ("A. " + prompt, 3),
    ]


def test_a_tokenizer_without_a_chat_template_has_no_chat_context() -> None:
    class Plain:
        chat_template = None

    assert chat_context(Plain(), EXCHANGES) is None


def test_chat_contexts_are_drawn_reproducibly_from_the_data_dir(lm: ChatLM) -> None:
    data_dir = Settings().data_dir
    assert data_dir is not None

    def draw(seed: int) -> list[KeyContext]:
        return chat_contexts(lm.tokenizer, interleaved_paragraphs(text_files(data_dir)), 2, 3, 120, seed)

    first, again, other = draw(0), draw(0), draw(1)
    assert first == again and first != other
    assert len(first) == 2 and first[0] != first[1]
    user_opener = first[0].anchor.split("\n", 1)[-1]  # "<|im_start|>user\n" after the turn's end
    for context in first:
        assert context.text.count(user_opener) == 3  # three exchanges, each ending where a user turn opens


def test_too_little_text_for_the_contexts_is_a_clear_error(lm: ChatLM) -> None:
    with pytest.raises(InvalidInput, match="chat contexts need 4 paragraphs"):
        chat_contexts(lm.tokenizer, iter(["x" * 300] * 3), 2, 2, 120, 0)
    assert chat_contexts(lm.tokenizer, iter([]), 0, 4, 120, 0) == []


@pytest.mark.slow
def test_the_editor_reads_a_key_in_each_chat_context(lm: ChatLM, tmp_path: Path) -> None:
    """One key per context (bare, prefixes, chat), the chat ones read after real earlier turns, and an edit
    fitted there is still answered at the top of a chat."""
    editor = rome_editor(
        tmp_path, n_prefixes=1, chat_contexts=2, chat_context_turns=2, chat_context_chars=150
    )
    prompt = _render(lm, build_messages([], [], QUESTION))
    request = EditRequest(prompt=prompt, subject="music genre", target=" jazz")
    (edit,) = editor.compute_edits(lm.model, lm.tokenizer, [request])
    assert edit.context_keys.shape[0] == 1 + 1 + 2
    cosines = torch.nn.functional.cosine_similarity(edit.context_keys[2:], edit.context_keys[:1])
    assert bool((cosines < 0.999).all())  # earlier turns change what the subject's token reads
    plain = rome_editor(tmp_path, n_prefixes=1)
    (without,) = plain.compute_edits(lm.model, lm.tokenizer, [request])
    assert torch.allclose(without.context_keys, edit.context_keys[:2], atol=1e-5)  # same bare and prefix keys
    delta = editor.compute_delta(lm.model, lm.tokenizer, [request])
    turns = as_turns(EXCHANGES)
    later = _render(lm, build_messages([], turns, QUESTION))  # turns the contexts never contained
    with DeltaApplier(lm.model).activate(delta):
        assert greedy(lm, lm.model, prompt, 4).strip().lower().startswith("jazz")
        assert greedy(lm, lm.model, later, 4).strip().lower().startswith("jazz")
