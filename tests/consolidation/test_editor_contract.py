"""Every registered editor keeps the `Editor` contract: returns a Delta, leaves the model bit-identical,
refuses malformed input. Editors get small, fast settings for whichever of these fields their config has."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import torch

from agent.llm import ChatLM
from api.settings import Settings
from consolidation.editors import Editor, EditRequest, available_editors, get_editor
from memory.errors import InvalidInput
from memory.weights.delta import Delta, LowRankUpdate
from memory.weights.hooks import DeltaApplier

REQUEST = EditRequest(prompt="The user's {} is", subject="favorite cuisine", target=" Ethiopian")


def _fast_editor(name: str, tmp_path: Path) -> Editor:
    """The editor with test-sized settings (only fields its config declares)."""
    fast: dict[str, Any] = {
        "data_dir": Settings().data_dir,
        "cov_cache_dir": tmp_path,
        "cov_tokens": 2000,
        "n_prefixes": 1,
        "v_steps": 3,
        "steps": 3,
    }
    config: Any = get_editor(name).config
    declared = {f.name for f in fields(config)}
    return get_editor(name, **{k: v for k, v in fast.items() if k in declared})


def _hook_counts(model: torch.nn.Module) -> dict[str, tuple[int, int]]:
    """Forward and pre-forward hooks per module (other tests may have installed delta hooks)."""
    return {n: (len(m._forward_hooks), len(m._forward_pre_hooks)) for n, m in model.named_modules()}


def test_registry_names_known_editors_on_a_bad_name() -> None:
    assert "rome" in available_editors()
    with pytest.raises(KeyError, match="rome"):
        get_editor("no-such-editor")


def test_unknown_config_field_is_refused() -> None:
    with pytest.raises(TypeError, match="no_such_field"):
        get_editor("rome", no_such_field=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prompt": "", "subject": "x", "target": " y"},
        {"prompt": "The user's {} is", "subject": " ", "target": " y"},
        {"prompt": "The user's {} is", "subject": "pet", "target": ""},
        {"prompt": "The user's pet is", "subject": "cuisine", "target": " y"},
        {"prompt": "{} and {}", "subject": "pet", "target": " y"},
        {"prompt": "The user's {} is", "subject": "pet", "target": " y", "subject_synonyms": [""]},
    ],
)
def test_malformed_request_is_invalid_input(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        EditRequest(**kwargs)


def test_request_template_and_span() -> None:
    filled = EditRequest(prompt="The user's favorite cuisine is", subject="favorite cuisine", target="x")
    assert filled.template == "The user's {} is" == REQUEST.template
    assert filled.filled_prompt == REQUEST.filled_prompt == "The user's favorite cuisine is"
    start, end = filled.subject_span()
    assert filled.filled_prompt[start:end] == "favorite cuisine"


@pytest.mark.slow
@pytest.mark.parametrize("name", available_editors())
class TestContract:
    def test_returns_a_delta_and_leaves_the_model_bit_identical(
        self, name: str, lm: ChatLM, tmp_path: Path
    ) -> None:
        before = {n: p.detach().clone() for n, p in lm.model.named_parameters()}
        flags = {n: p.requires_grad for n, p in lm.model.named_parameters()}
        training = lm.model.training
        hooks = _hook_counts(lm.model)
        delta = _fast_editor(name, tmp_path).compute_delta(lm.model, lm.tokenizer, [REQUEST])
        assert isinstance(delta, Delta) and not delta.is_empty()
        for n, p in lm.model.named_parameters():
            assert torch.equal(p, before[n]), f"{name} changed {n}"
            assert p.grad is None, f"{name} left a gradient on {n}"
            assert p.requires_grad == flags[n], f"{name} changed requires_grad of {n}"
        assert lm.model.training == training
        assert _hook_counts(lm.model) == hooks, f"{name} left a hook installed"
        modules = dict(lm.model.named_modules())
        for update in delta:
            weight = modules[update.module].weight
            assert update.dense().shape == weight.shape

    def test_no_requests_give_an_empty_delta(self, name: str, lm: ChatLM, tmp_path: Path) -> None:
        assert _fast_editor(name, tmp_path).compute_delta(lm.model, lm.tokenizer, []).is_empty()

    def test_a_non_request_is_invalid_input(self, name: str, lm: ChatLM, tmp_path: Path) -> None:
        with pytest.raises(InvalidInput):
            _fast_editor(name, tmp_path).compute_delta(lm.model, lm.tokenizer, ["favorite cuisine"])  # type: ignore[list-item]

    def test_compute_memory_keeps_the_users_other_updates(
        self, name: str, lm: ChatLM, tmp_path: Path
    ) -> None:
        """The user's whole new memory: what they had (here an update on another module) stays, as the same
        object so the weight memory stores only the increment, and the new edit is added."""
        module = lm.model.get_submodule("model.layers.2.mlp.up_proj")
        out_features, in_features = module.weight.shape
        gen = torch.Generator().manual_seed(0)
        earlier = LowRankUpdate(
            "model.layers.2.mlp.up_proj",
            torch.randn(1, in_features, generator=gen) * 1e-3,
            torch.randn(out_features, 1, generator=gen) * 1e-3,
        )
        current = Delta.of([earlier])
        editor = _fast_editor(name, tmp_path)
        memory = editor.compute_memory(lm.model, lm.tokenizer, [REQUEST], current)
        assert memory.updates[0] is earlier
        assert len(memory) > 1 and set(memory.modules()) - {earlier.module}
        assert not DeltaApplier(lm.model).active()  # `current` was active only while computing
        assert editor.compute_memory(lm.model, lm.tokenizer, [], current) is current
