"""LoRA and FT-M on the real model: they write the preference, stay within their bounds, touch nothing."""

from __future__ import annotations

import pytest
import torch

from agent.llm import ChatLM
from api.settings import Settings
from consolidation.editors import EditRequest, get_editor
from consolidation.editors.training import encode_with_target, masked_nll, training_pairs
from consolidation.metrics import greedy_answers
from memory.weights.hooks import DeltaApplier

pytestmark = pytest.mark.slow

QUESTION = "What's my favorite cuisine?"


def _request(lm: ChatLM, target: str = "Ethiopian") -> EditRequest:
    prompt = lm.tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], add_generation_prompt=True, tokenize=False
    )
    return EditRequest(prompt=prompt, subject="favorite cuisine", target=target)


def test_lora_writes_the_preference(lm: ChatLM) -> None:
    delta = get_editor("lora", data_dir=Settings().data_dir).compute_delta(
        lm.model, lm.tokenizer, [_request(lm)]
    )
    assert [u.rank for u in delta] == [4, 1] * 5  # per module: the adapter, then the subject's opener row
    assert greedy_answers(lm.model, lm.tokenizer, [QUESTION], 8)[0] != "Ethiopian"  # base model unchanged
    with DeltaApplier(lm.model).activate(delta):
        assert "ethiopian" in greedy_answers(lm.model, lm.tokenizer, [QUESTION], 8)[0].lower()


def test_ftm_stays_in_its_norm_ball_and_lowers_the_target_loss(lm: ChatLM) -> None:
    editor = get_editor("ftm")
    request = _request(lm)
    delta = editor.compute_delta(lm.model, lm.tokenizer, [request])
    (update,) = delta.updates
    weight = lm.model.get_submodule(update.module).weight
    assert update.rank <= editor.config.keep_rank
    assert (
        float(update.dense().detach().norm()) <= editor.config.max_norm_ratio * float(weight.norm()) * 1.001
    )
    ids, labels = encode_with_target(lm.tokenizer, request.filled_prompt, request.target)
    with torch.no_grad():
        before = float(masked_nll(lm.model, ids, labels))
        with DeltaApplier(lm.model).activate(delta):
            after = float(masked_nll(lm.model, ids, labels))
    assert after < 0.5 * before


def test_target_tokens_alone_are_labelled(lm: ChatLM) -> None:
    request = _request(lm, target="Dancing at clubs")
    ids, labels = encode_with_target(lm.tokenizer, request.filled_prompt, request.target)
    learned = lm.tokenizer.decode(ids[0][labels[0] != -100])
    assert learned.startswith("Dancing at clubs")
    assert learned.endswith("<|im_end|>")  # in chat form the answer also learns to stop


def test_cluster_pairs_put_synonyms_in_the_template() -> None:
    request = EditRequest(
        prompt="What's my hobby?",
        subject="hobby",
        target="Clubbing",
        subject_synonyms=["pastime", "interest"],
        target_synonyms=["Nightclub dancing", "Going out dancing"],
    )
    assert training_pairs([request], 1) == [("What's my hobby?", "Clubbing")]
    assert training_pairs([request], 3) == [
        ("What's my hobby?", "Clubbing"),
        ("What's my pastime?", "Nightclub dancing"),
        ("What's my interest?", "Going out dancing"),
    ]
