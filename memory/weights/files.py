"""Atomic files for weight memory: a reader sees the old file or the new one, never half of one (Invariant 5).

Write to a temporary file in the same directory (so the rename cannot cross file systems), fsync it,
`os.replace` it over the target, then fsync the directory so the rename itself survives a power cut.
Temporary files start with `TEMP_PREFIX`, so `WeightMemory.recover()` can sweep those a crash left behind.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from memory.weights.delta import Delta

log = logging.getLogger(__name__)

TEMP_PREFIX = ".tmp-"
FORMAT_KEY = "imprint_delta_format"
FORMAT_VERSION = "1"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably; the parent directory must exist."""
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def save_delta(path: Path, delta: Delta) -> None:
    """Write `delta` as safetensors at `path`, atomically."""
    # clone: safetensors refuses tensors that share storage, and factors may be views of one buffer
    tensors = {k: v.clone() for k, v in delta.to_tensors().items()}
    atomic_write_bytes(path, st_save(tensors, metadata={FORMAT_KEY: FORMAT_VERSION}))
    log.debug("saved delta with %d updates to %s", len(delta), path)


def load_delta(path: Path) -> Delta:
    """Read a delta written by `save_delta`."""
    return Delta.from_tensors(st_load(path.read_bytes()))
