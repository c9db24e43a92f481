"""Loading the bundled model: found inside the installed package, converted once, clear errors otherwise."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.model_loading import ModelLoadError, bundled_gguf_path, convert_bundled, load_model


def test_bundled_gguf_is_found_without_importing_the_plugin() -> None:
    path = bundled_gguf_path()
    assert path.suffix == ".gguf"
    assert path.stat().st_size > 50_000_000  # the real quantised weights, not a pointer file


@pytest.mark.slow
def test_conversion_is_cached_and_reused(model_cache_dir: Path) -> None:
    first = convert_bundled(model_cache_dir)
    assert (first / "config.json").exists()
    assert list(first.glob("*.safetensors"))
    started = time.perf_counter()
    again = convert_bundled(model_cache_dir)
    assert again == first
    assert time.perf_counter() - started < 1.0  # a cache hit reads one file, it does not convert


def test_missing_local_model_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="nothing is downloaded at run time"):
        load_model(str(tmp_path / "no-such-model"), tmp_path)


def test_unknown_dtype_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="dtype"):
        load_model("bundled:smollm2", tmp_path, dtype="int3")
