"""Chat-template generation: greedy is reproducible, streaming equals whole, sampling follows the seed."""

from __future__ import annotations

import pytest
import torch

from agent.llm import ChatLM, GenerationConfig, Usage

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "Name three colours."}]


def test_greedy_generation_is_deterministic(lm: ChatLM) -> None:
    cfg = GenerationConfig(max_new_tokens=16)
    first = lm.generate(MESSAGES, cfg)
    assert first
    assert lm.generate(MESSAGES, cfg) == first


@pytest.mark.parametrize("temperature", [1e-300, 5e-324, 1e-3])
def test_a_vanishing_temperature_decodes_greedily(lm: ChatLM, temperature: float) -> None:
    """Sampling at 1e-300 overflows logits / temperature to inf (seen as a 500 from a fuzzed request)."""
    greedy = lm.generate(MESSAGES, GenerationConfig(max_new_tokens=8))
    assert lm.generate(MESSAGES, GenerationConfig(max_new_tokens=8, temperature=temperature)) == greedy
    streamed = "".join(lm.stream(MESSAGES, GenerationConfig(max_new_tokens=8, temperature=temperature)))
    assert streamed.strip() == greedy


def test_streaming_yields_the_same_text_as_generate(lm: ChatLM) -> None:
    cfg = GenerationConfig(max_new_tokens=16)
    pieces = list(lm.stream(MESSAGES, cfg))
    assert len(pieces) > 1  # really token by token, not one blob at the end
    assert "".join(pieces).strip() == lm.generate(MESSAGES, cfg)


def test_streaming_counts_the_prompt_and_the_generated_tokens(lm: ChatLM) -> None:
    usage = Usage()
    text = "".join(lm.stream(MESSAGES, GenerationConfig(max_new_tokens=8, min_new_tokens=8), usage))
    assert usage.prompt_tokens == lm.encode_chat(MESSAGES).shape[-1]
    assert usage.completion_tokens == 8  # forced to exactly 8, none of them the end of sequence
    assert lm.count_tokens(text) in range(6, 11)  # re-tokenizing the text may merge or split a token

    ids = lm.encode_chat(MESSAGES)
    with torch.inference_mode():  # left free, the model stops on its own: the end token is not counted
        out = lm.model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=64,
            do_sample=False,
            repetition_penalty=GenerationConfig().repetition_penalty,
            pad_token_id=lm.tokenizer.pad_token_id,
        )
    generated = out[0, ids.shape[-1] :].tolist()
    ended = [t for t in generated if t not in {lm.tokenizer.eos_token_id, lm.tokenizer.pad_token_id}]
    free = Usage()
    "".join(lm.stream(MESSAGES, GenerationConfig(max_new_tokens=64), free))
    assert free.completion_tokens == len(ended)


def test_generate_hands_out_the_answer_piece_by_piece(lm: ChatLM) -> None:
    pieces: list[str] = []
    usage = Usage()
    text = lm.generate(MESSAGES, GenerationConfig(max_new_tokens=16), usage, on_text=pieces.append)
    assert len(pieces) > 1  # while generating, not one blob at the end
    assert "".join(pieces).strip() == text == lm.generate(MESSAGES, GenerationConfig(max_new_tokens=16))
    assert usage.prompt_tokens == lm.encode_chat(MESSAGES).shape[-1] and 0 < usage.completion_tokens <= 16


def test_sampling_follows_the_seed(lm: ChatLM) -> None:
    a = lm.generate(MESSAGES, GenerationConfig(max_new_tokens=24, temperature=1.0, seed=1))
    b = lm.generate(MESSAGES, GenerationConfig(max_new_tokens=24, temperature=1.0, seed=1))
    c = lm.generate(MESSAGES, GenerationConfig(max_new_tokens=24, temperature=1.0, seed=2))
    assert a == b
    assert a != c


def test_chat_template_marks_the_assistant_turn(lm: ChatLM) -> None:
    ids = lm.encode_chat(MESSAGES)
    text = lm.tokenizer.decode(ids[0])
    assert text.rstrip().endswith("assistant")
    assert "Name three colours." in text


def test_count_tokens_grows_with_text(lm: ChatLM) -> None:
    assert 0 < lm.count_tokens("quiet hotels") < lm.count_tokens("quiet hotels far from the nightlife")


def test_streaming_worker_sees_the_callers_context(lm: ChatLM) -> None:
    import contextvars

    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")
    seen: list[str] = []
    handle = lm.model.register_forward_pre_hook(lambda *_: seen.append(marker.get()))
    token = marker.set("caller")
    try:
        list(lm.stream(MESSAGES, GenerationConfig(max_new_tokens=3)))
    finally:
        marker.reset(token)
        handle.remove()
    assert seen and set(seen) == {"caller"}
