"""`UpperReplay` on the real model: replaying the blocks above a delta's lowest edited one gives the hidden
states of a full pass, for the delta that made the record and for others, and never reuses a record that a
lower edit would have changed."""

from __future__ import annotations

import pytest
import torch

from agent.llm import ChatLM
from consolidation.drift.replay import UpperReplay
from consolidation.drift.scoring import full_body
from memory.weights.delta import Delta, LowRankUpdate
from memory.weights.hooks import DeltaApplier

pytestmark = pytest.mark.slow

TEXTS = ["The river flows north through the valley.", "Question: who wrote Hamlet?\nAnswer:"]


def _delta(lm: ChatLM, layer: int, seed: int, scale: float = 0.3) -> Delta:
    name = f"model.layers.{layer}.mlp.down_proj"
    weight = lm.model.get_submodule(name).weight
    gen = torch.Generator().manual_seed(seed)
    down = torch.randn(2, weight.shape[1], generator=gen)
    up = torch.randn(weight.shape[0], 2, generator=gen)
    up = up * (scale * weight.norm() / (up @ down).norm())
    return Delta.of([LowRankUpdate(name, down, up)])


@torch.inference_mode()
def _hidden(
    lm: ChatLM, replay: UpperReplay | None, delta: Delta, enc: dict[str, torch.Tensor]
) -> torch.Tensor:
    with DeltaApplier(lm.model).activate(delta):
        if replay is None:
            return full_body(lm.model)(enc)
        return replay.hidden(enc, replay.lowest_block(delta))


def test_replay_matches_a_full_pass_and_refuses_stale_records(lm: ChatLM) -> None:
    tok = lm.tokenizer
    old = tok.padding_side
    tok.padding_side = "left"
    enc = dict(tok(TEXTS, return_tensors="pt", padding=True, add_special_tokens=False))
    tok.padding_side = old
    replay = UpperReplay(lm.model)
    first, second, lower = _delta(lm, 8, 0), _delta(lm, 12, 1), _delta(lm, 3, 2)
    mask = enc["attention_mask"].bool()

    for delta in (first, first, second, lower, first):  # record at 8, replay, replay higher, re-record at 3
        expected = _hidden(lm, None, delta, enc)
        got = _hidden(lm, replay, delta, enc)
        torch.testing.assert_close(got[mask], expected[mask], rtol=1e-4, atol=1e-4)

    # the deltas really change the states the replay must reproduce
    base = _hidden(lm, None, Delta(), enc)
    assert (base[mask] - _hidden(lm, None, first, enc)[mask]).abs().max() > 1e-2


def test_lowest_block_reads_module_names(lm: ChatLM) -> None:
    replay = UpperReplay(lm.model)
    assert replay.lowest_block(None) is None
    assert replay.lowest_block(Delta()) is None
    both = _delta(lm, 12, 0).stack(_delta(lm, 8, 1))
    assert replay.lowest_block(both) == 8
    head = lm.model.get_output_embeddings().weight
    outside = LowRankUpdate("lm_head", torch.zeros(1, head.shape[1]), torch.zeros(head.shape[0], 1))
    assert replay.lowest_block(Delta.of([outside])) == 0  # not a block: nothing below can be trusted
