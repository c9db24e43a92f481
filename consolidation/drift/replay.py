"""`UpperReplay`: the decoder body's output for a probe batch, running only the blocks a delta can change.

Why: a check scores the same fixed batches every time, and a candidate delta edits a few blocks (ROME's
default is block 8 of SmolLM2's 30); every block below the lowest edited one computes exactly what it
computed for the previous check. The first time a batch is seen under a delta whose lowest block is L, one
ordinary pass records what blocks L and above receive (block L's hidden states; every block's masks and
position embeddings); later passes with a delta whose lowest block is at least L replay blocks L and above
from that record. With no delta (the base model) or a delta below the record, the whole body runs.

The record holds references to tensors the pass made anyway; for the default probes it is about 100 MB
per model. Replay leaves every delta hook in place, so the candidate's updates apply as in a full pass.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from consolidation.hooks import this_thread_only
from memory.weights.delta import Delta


@dataclass
class _Record:
    layer: int  # first replayed block
    hidden: torch.Tensor  # (B, T, H): what block `layer` received
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]]  # each replayed block's other args and kwargs


class UpperReplay:
    """Body outputs (after the final norm) of `model` for probe batches, replaying the upper blocks."""

    def __init__(self, model: nn.Module, layers_path: str = "model.layers", norm_path: str = "model.norm"):
        blocks = model.get_submodule(layers_path)
        if not isinstance(blocks, nn.ModuleList):
            raise TypeError(f"{layers_path} is {type(blocks).__name__}, not the ModuleList of decoder blocks")
        self.model, self.blocks = model, list(blocks)
        self.norm = model.get_submodule(norm_path)
        self._block_of = re.compile(rf"^{re.escape(layers_path)}\.(\d+)\.")
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def lowest_block(self, delta: Delta | None) -> int | None:
        """The lowest decoder block `delta` edits; None when it edits nothing, or a module outside the blocks
        (then nothing below it can be assumed unchanged)."""
        if delta is None or delta.is_empty():
            return None
        found = []
        for name in delta.modules():
            match = self._block_of.match(name)
            if match is None:
                return 0
            found.append(int(match.group(1)))
        return min(found)

    def hidden(self, enc: dict[str, torch.Tensor], lowest: int | None) -> torch.Tensor:
        """(B, T, H) last hidden states of the batch `enc` under whatever delta is active, whose lowest
        edited block is `lowest` (from `lowest_block`)."""
        if not lowest:  # None (base model) or block 0: nothing to skip
            return self._full(enc)
        key = _batch_key(enc)
        with self._lock:
            record = self._records.get(key)
        if record is not None and record.layer <= lowest:
            return self._replay(record)
        with self._recording(lowest) as calls:
            out = self._full(enc)
        if len(calls) != len(self.blocks) - lowest:
            raise RuntimeError(f"recorded {len(calls)} block calls for {len(self.blocks) - lowest} blocks")
        first_args, first_kwargs = calls[0]
        hidden = first_args[0] if first_args else first_kwargs["hidden_states"]
        rest = [(args[1:], {k: v for k, v in kw.items() if k != "hidden_states"}) for args, kw in calls]
        with self._lock:
            self._records[key] = _Record(lowest, hidden, rest)
        return out

    def clear(self) -> None:
        """Forget every record (for instance after the base weights changed)."""
        with self._lock:
            self._records.clear()

    def _full(self, enc: dict[str, torch.Tensor]) -> torch.Tensor:
        body: Any = self.model.base_model  # type: ignore[union-attr]
        out: torch.Tensor = body(**enc, use_cache=False).last_hidden_state
        return out

    @contextmanager
    def _recording(self, lowest: int) -> Iterator[list[tuple[tuple[Any, ...], dict[str, Any]]]]:
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            calls.append((args, dict(kwargs)))

        scoped = this_thread_only(hook)  # a chat served meanwhile must not add its blocks' calls
        handles = [b.register_forward_pre_hook(scoped, with_kwargs=True) for b in self.blocks[lowest:]]
        try:
            yield calls
        finally:
            for handle in handles:
                handle.remove()

    def _replay(self, record: _Record) -> torch.Tensor:
        hidden = record.hidden
        for block, (args, kwargs) in zip(self.blocks[record.layer :], record.calls, strict=True):
            out = block(hidden, *args, **kwargs)
            hidden = out[0] if isinstance(out, tuple) else out
        normed: torch.Tensor = self.norm(hidden)
        return normed


def _batch_key(enc: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha1()
    for name in sorted(enc):
        tensor = enc[name]
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
