"""What the ROME tests share: the editor on a small, cached C, and a question in the model's chat form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from agent.llm import ChatLM
from api.settings import Settings
from consolidation.editors import get_editor
from consolidation.editors.rome import RomeEditor

SAMPLE_TOKENS = 4000  # enough for a usable C on this model; the default 50k is for real use


def rome_editor(cache_dir: Path, **overrides: Any) -> RomeEditor:
    """ROME on the tests' small C (cached in `cache_dir`), with `overrides` on its config."""
    built = get_editor(
        "rome", data_dir=Settings().data_dir, cov_cache_dir=cache_dir, cov_tokens=SAMPLE_TOKENS, **overrides
    )
    assert isinstance(built, RomeEditor)
    return built


def chat(lm: ChatLM, question: str) -> str:
    """`question` as the only user turn, rendered with the generation prompt: how the agent asks it."""
    rendered = [{"role": "user", "content": question}]
    return str(lm.tokenizer.apply_chat_template(rendered, add_generation_prompt=True, tokenize=False))


def greedy(lm: ChatLM, model: Any, prompt: str, n: int = 6) -> str:
    """The `n` tokens `model` greedily continues `prompt` with (any active delta applies)."""
    ids = lm.tokenizer(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False)
    return str(lm.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
