"""Export as a peft LoRA adapter: plain `PeftModel.from_pretrained` reproduces the user's logits."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import PeftModel, get_peft_model_state_dict
from safetensors.torch import load_file

from memory.errors import InvalidInput, NotFound
from memory.weights.delta import Delta, LowRankUpdate
from memory.weights.export import export_peft
from memory.weights.weight_memory import WeightMemory
from tests.openmp_threads import counts_pool_threads, leaves_no_workers

PROVENANCE: dict[str, Any] = {"editor": "rome", "settings": {}, "requests": [], "metrics": {}, "seconds": 1.0}


def random_delta(seed: int, layer: int, rank: int) -> Delta:
    g = torch.Generator().manual_seed(seed)
    down = torch.randn(rank, 1536, generator=g) * 0.05
    up = torch.randn(576, rank, generator=g) * 0.05
    return Delta.of([LowRankUpdate(f"model.layers.{layer}.mlp.down_proj", down, up)])


@pytest.mark.slow
def test_exported_adapter_matches_applied_logits(tmp_path: Path, lm: Any) -> None:
    wm = WeightMemory(tmp_path / "wm", lm.model)
    # two edits on layer 8 (rank 1 + 2) and one on layer 3 (rank 1): modules of different total rank
    wm.commit("alice", random_delta(1, 8, 1).stack(random_delta(2, 3, 1)), **PROVENANCE)
    wm.commit("alice", random_delta(3, 8, 2), **PROVENANCE)
    ids = lm.tokenizer("On weekends I like to", return_tensors="pt")["input_ids"]
    with torch.no_grad(), wm.applied("alice"):
        expected = lm.model(ids).logits

    out = export_peft(wm, "alice", tmp_path / "adapter", "HuggingFaceTB/SmolLM2-135M-Instruct")
    config = json.loads((out / "adapter_config.json").read_text())
    assert sorted(config["target_modules"]) == [
        "model.layers.3.mlp.down_proj",
        "model.layers.8.mlp.down_proj",
    ]
    assert (
        config["rank_pattern"]
        == config["alpha_pattern"]
        == {
            "model.layers.8.mlp.down_proj": 3,
            "model.layers.3.mlp.down_proj": 1,
        }
    )

    peft_model = PeftModel.from_pretrained(copy.deepcopy(lm.model), out)
    peft_model.eval()
    with torch.no_grad():
        got = peft_model(input_ids=ids).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)

    # our keys and shapes are exactly the ones peft itself saves for this adapter
    ours = load_file(out / "adapter_model.safetensors")
    theirs = get_peft_model_state_dict(peft_model, save_embedding_layers=False)  # no hub lookup
    assert sorted(ours) == sorted(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_nothing_to_export(tmp_path: Path) -> None:
    wm = WeightMemory(tmp_path / "wm", torch.nn.Linear(2, 2))
    with pytest.raises(NotFound, match="nothing to export"):
        export_peft(wm, "nobody", tmp_path / "adapter", "base")
    assert not (tmp_path / "adapter").exists()


def test_a_scoped_memory_exports_only_when_asked_to_drop_its_scope(tmp_path: Path) -> None:
    """A LoRA adapter applies at every token, a scoped memory only inside its scope: exporting one as is
    would serve other logits than the service does, so it is refused unless the caller asks for that."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    wm = WeightMemory(tmp_path / "wm", model)
    down, up = torch.eye(4)[:1], torch.tensor([[1.0], [2.0]])
    wm.commit("alice", Delta.of([LowRankUpdate.in_scope("0", down, up, "rome:hobby", 0.5)]), **PROVENANCE)
    with pytest.raises(InvalidInput, match="scoped"):
        export_peft(wm, "alice", tmp_path / "adapter", "base")
    assert not (tmp_path / "adapter").exists()

    out = export_peft(wm, "alice", tmp_path / "adapter", "base", unscoped=True)
    weights = load_file(out / "adapter_model.safetensors")
    assert torch.equal(weights["base_model.model.0.lora_A.weight"], down)
    assert torch.equal(weights["base_model.model.0.lora_B.weight"], up)


@counts_pool_threads
@pytest.mark.slow
def test_exporting_a_large_memory_leaves_no_workers_on_its_thread(tmp_path: Path, lm: Any) -> None:
    """An HTTP worker exports; copying a memory of ROME's size (175 keys) runs parallel kernels, and a
    pool kept on that thread would halve the speed of the turns it serves next (memory/openmp.py)."""
    wm = WeightMemory(tmp_path / "wm", lm.model)
    wm.commit("alice", random_delta(1, 8, 175), **PROVENANCE)
    assert leaves_no_workers(lambda: export_peft(wm, "alice", tmp_path / "adapter", "base"))
