"""Export a user's weight memory as a peft LoRA adapter, so peft or a multi-LoRA server can serve it.

A delta is already LoRA: per module ΔW = up @ down = lora_B @ lora_A · scaling. Each module keeps its own
rank r (the sum of its stacked edits' ranks) through `rank_pattern`, and `alpha_pattern` sets lora_alpha = r
so peft's scaling alpha / r is exactly 1. Keys follow peft's saved layout (checked against
`get_peft_model_state_dict` in the tests): `base_model.model.<module>.lora_A.weight` (r, in) and
`.lora_B.weight` (out, r). `target_modules` lists the exact module names, so nothing else is adapted.

A scoped memory (ROME's `scope` setting, `memory.weights.delta`) applies at its subjects' tokens only,
which a LoRA adapter cannot say: exporting one is refused unless the caller accepts an adapter that applies
it at every token (`unscoped=True`), as unscoped ROME is served.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from peft import LoraConfig
from safetensors.torch import save as st_save

from memory.atomic import atomic_write_bytes
from memory.errors import InvalidInput, NotFound
from memory.openmp import pool_released_after
from memory.weights.weight_memory import WeightMemory

log = logging.getLogger(__name__)

CONFIG_FILE = "adapter_config.json"  # the names peft's `from_pretrained` looks for
WEIGHTS_FILE = "adapter_model.safetensors"
PEFT_PREFIX = "base_model.model."


def export_peft(
    weight_memory: WeightMemory,
    user_id: str,
    out_dir: Path,
    base_model_name_or_path: str,
    unscoped: bool = False,
) -> Path:
    """Write `user_id`'s memory in force as a LoRA adapter folder at `out_dir`; returns `out_dir`.

    Raises `NotFound` for a user with nothing in force: an adapter without targets is not a valid adapter.
    Raises `InvalidInput` for a scoped memory unless `unscoped`: the adapter's logits would differ from the
    service's at every token outside the scope, and nothing says so once the folder is elsewhere.
    """
    # merging and copying a large memory's factors runs parallel kernels on the caller's thread (an HTTP
    # worker, in the service): its OpenMP pool is given back so the turns served next run at full speed
    with pool_released_after():
        memory = weight_memory.delta(user_id)
        # refused before any factor is merged or copied
        if memory.is_empty():
            raise NotFound(f"user {user_id!r} has no weight memory in force; there is nothing to export")
        if memory.is_scoped() and not unscoped:
            raise InvalidInput(
                f"user {user_id!r}'s weight memory is scoped (it applies only at its subjects' tokens), "
                "which a LoRA adapter cannot express: export it with unscoped=true for an adapter that "
                "applies it at every token (not as served), or edit with ROME's scope unset (scope=none) "
                "for a memory that exports exactly"
            )
        delta = memory.merged()  # one update per module: one LoRA pair per module
        tensors = {}
        for u in delta:
            tensors[f"{PEFT_PREFIX}{u.module}.lora_A.weight"] = _saved(u.down)
            tensors[f"{PEFT_PREFIX}{u.module}.lora_B.weight"] = _saved(u.up)
    ranks = {u.module: u.rank for u in delta}
    config = LoraConfig(
        r=max(ranks.values()),
        lora_alpha=max(ranks.values()),
        target_modules=list(ranks),
        rank_pattern=dict(ranks),
        alpha_pattern=dict(ranks),  # alpha = r per module: scaling 1, so lora_B @ lora_A is ΔW exactly
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
        base_model_name_or_path=base_model_name_or_path,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # weights first: a folder with a config but no weights would look like a complete adapter
    atomic_write_bytes(out_dir / WEIGHTS_FILE, st_save(tensors, metadata={"format": "pt"}))
    config_json = json.dumps(config.to_dict(), indent=2, sort_keys=True, default=_jsonable)
    atomic_write_bytes(out_dir / CONFIG_FILE, config_json.encode())
    log.info(
        "exported user %s's weight memory (%d modules) as a LoRA adapter to %s", user_id, len(ranks), out_dir
    )
    return out_dir


def _saved(factor: torch.Tensor) -> torch.Tensor:
    """A factor as safetensors stores it: float32 on the CPU, contiguous, owning its memory."""
    return factor.detach().float().cpu().contiguous().clone()


def _jsonable(value: object) -> object:
    """peft's config holds sets (target_modules); JSON wants lists, sorted for a stable file."""
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot write {type(value).__name__} to an adapter config")
