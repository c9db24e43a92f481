"""Delta files: safetensors written through `memory.atomic` (temp file, fsync, rename; Invariant 5).

`TEMP_PREFIX` marks the temporary files a crash can leave, so `WeightMemory.recover()` can sweep them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save as st_save

from memory.atomic import TEMP_PREFIX, atomic_write_bytes
from memory.weights.delta import Delta

__all__ = ["TEMP_PREFIX", "load_delta", "save_delta"]

log = logging.getLogger(__name__)

FORMAT_KEY = "imprint_delta_format"
FORMAT_VERSION = "1"
LABEL_PREFIX = "label."  # metadata key of update i's label: "label.3"


def save_delta(path: Path, delta: Delta) -> None:
    """Write `delta` as safetensors at `path`, atomically."""
    # clone: safetensors refuses tensors that share storage, and factors may be views of one buffer
    tensors = {k: v.clone() for k, v in delta.to_tensors().items()}
    metadata = {FORMAT_KEY: FORMAT_VERSION}
    metadata.update({LABEL_PREFIX + i: label for i, label in delta.labels().items()})
    atomic_write_bytes(path, st_save(tensors, metadata=metadata))
    log.debug("saved delta with %d updates to %s", len(delta), path)


def load_delta(path: Path) -> Delta:
    """Read a delta written by `save_delta`, labels included."""
    with safe_open(str(path), framework="pt") as f:  # type: ignore[no-untyped-call]
        metadata = f.metadata() or {}
        tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open is no dict)
    labels = {k.removeprefix(LABEL_PREFIX): v for k, v in metadata.items() if k.startswith(LABEL_PREFIX)}
    return Delta.from_tensors(tensors, labels)
