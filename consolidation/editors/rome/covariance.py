"""C = E[k kᵀ]: the second moment of the edited module's inputs over plain text, cached on disk.

ROME's update is covariance-weighted so that keys the text makes common barely move. The text is WikiText
validation plus the Wikipedia sample in the data directory, interleaved paragraph by paragraph; WikiText's
test split is never read (perplexity probes use it). Statistics describe the BASE model: any user delta
active through forward hooks is switched off while they are collected. One pass collects every requested
module and stops right after the deepest one.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from itertools import zip_longest
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save
from torch import nn
from tqdm.auto import tqdm

from consolidation.editors.rome.contexts import exchange
from consolidation.editors.rome.tracing import capture_inputs, run_until_stopped
from memory.atomic import atomic_write_bytes
from memory.errors import InvalidInput
from memory.weights.hooks import DeltaApplier

log = logging.getLogger(__name__)

TEXT_SOURCES = ("wikitext/wiki.valid.raw", "wikipedia/*.txt")  # relative to the data dir
RESERVED = "wikitext/wiki.test.raw"  # perplexity probes only; never statistics
RECIPE = "v1"  # bump when the way text is chosen changes, so old caches stop matching


def text_files(data_dir: Path) -> list[Path]:
    """The plain-text files statistics are drawn from, in a fixed order."""
    files: list[Path] = []
    for pattern in TEXT_SOURCES:
        files += sorted(data_dir.glob(pattern))
    files = [f for f in files if f.resolve() != (data_dir / RESERVED).resolve()]
    if not files:
        raise InvalidInput(f"no plain text for ROME statistics under {data_dir} (looked for {TEXT_SOURCES})")
    return files


def _paragraphs(path: Path) -> Iterator[str]:
    """Non-empty lines of a file, minus WikiText's ' = Heading = ' lines."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            text = line.strip()
            if text and not (text.startswith("=") and text.endswith("=")):
                yield text


def interleaved_paragraphs(files: Sequence[Path]) -> Iterator[str]:
    """Paragraphs round-robin across files, so a small sample still mixes sources."""
    for group in zip_longest(*(_paragraphs(f) for f in files)):
        yield from (p for p in group if p is not None)


def as_chat(tokenizer: Any, paragraph: str) -> str:
    """A paragraph as one chat exchange: its first sentence asked by the user, the rest answered.

    Why: the model is served in chat form, so the edited module sees the chat template's tokens in every
    turn, and plain text never shows them. Left out of C, their directions look rare, and a ROME update is
    cheapest exactly there: it then moves the answer position of every chat prompt.
    """
    question, answer = exchange(paragraph)
    text: str = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}, {"role": "assistant", "content": answer}], tokenize=False
    )
    return text


def token_windows(
    tokenizer: Any, files: Sequence[Path], n_tokens: int, seq_len: int, chat_every: int = 0
) -> Iterator[list[int]]:
    """Windows of at most `seq_len` ids, `n_tokens` in total, from the interleaved text; with `chat_every`
    = n > 0, every n-th paragraph is rendered as a chat exchange (`as_chat`)."""
    buffer: list[int] = []
    remaining = n_tokens
    for i, paragraph in enumerate(interleaved_paragraphs(files)):
        text = as_chat(tokenizer, paragraph) if chat_every and i % chat_every == 0 else paragraph + "\n"
        buffer += tokenizer(text, add_special_tokens=False)["input_ids"]
        while len(buffer) >= seq_len and remaining > 0:
            take = min(seq_len, remaining)
            yield buffer[:take]
            buffer, remaining = buffer[take:], remaining - take
        if remaining <= 0:
            return
    if remaining > 0 and buffer:
        yield buffer[:remaining]
        remaining -= min(len(buffer), remaining)
    if remaining > 0:
        log.warning("plain text ran out %d tokens short of the %d asked for", remaining, n_tokens)


def model_fingerprint(model: nn.Module) -> str:
    """A cheap identity of the weights: a strided sample of every parameter, hashed with its name and
    shape. Two models share statistics only if they share weights, whatever their paths are called."""
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters(), key=lambda item: item[0]):
        flat = param.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 4096)][:4096].float().cpu().contiguous()
        digest.update(f"{name}{tuple(param.shape)}{param.dtype}".encode())
        digest.update(sample.numpy().tobytes())
    return digest.hexdigest()[:16]


def _data_fingerprint(files: Sequence[Path], seq_len: int, chat_every: int = 0) -> str:
    recipe = [RECIPE, str(seq_len)] + ([f"chat/{chat_every}"] if chat_every else [])  # plain: old caches hold
    parts = recipe + [f"{f.name}:{f.stat().st_size}" for f in files]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:8]


def cache_path(cache_dir: Path, model_id: str, data_id: str, module: str, n_tokens: int) -> Path:
    """One file per (model, data recipe, module, sample size)."""
    return cache_dir.expanduser() / f"{model_id}-{data_id}" / f"{module}.{n_tokens}.safetensors"


@torch.no_grad()
def _collect(
    model: nn.Module,
    tokenizer: Any,
    modules: Sequence[str],
    files: Sequence[Path],
    n_tokens: int,
    seq_len: int,
    chat_every: int = 0,
) -> dict[str, torch.Tensor]:
    """Σ k kᵀ / n for every module in one pass over the text (float64 sums)."""
    order = {name: i for i, (name, _) in enumerate(model.named_modules())}
    missing = [m for m in modules if m not in order]
    if missing:
        raise InvalidInput(f"model has no module(s) {missing}; check RomeConfig.module_template")
    deepest = max(modules, key=order.__getitem__)
    device = next(model.parameters()).device
    sums: dict[str, torch.Tensor] = {}
    seen = 0
    with (
        DeltaApplier(model).activate(None),
        capture_inputs(model, list(modules), stop_after=deepest) as captured,
        tqdm(total=n_tokens, unit="tok", desc=f"ROME statistics ({len(modules)} modules)") as bar,
    ):
        for window in token_windows(tokenizer, files, n_tokens, seq_len, chat_every):
            ids = torch.tensor([window], dtype=torch.long, device=device)  # (1, T)
            run_until_stopped(model, input_ids=ids)
            for name in modules:
                k = captured[name][0].double().cpu()  # (T, in)
                sums[name] = sums[name] + k.T @ k if name in sums else k.T @ k
            seen += len(window)
            bar.update(len(window))
    if seen == 0:
        raise InvalidInput("no text tokens to estimate ROME statistics from")
    return {name: (s / seen).float() for name, s in sums.items()}


def second_moments(
    model: nn.Module,
    tokenizer: Any,
    modules: Sequence[str],
    *,
    n_tokens: int,
    seq_len: int,
    data_dir: Path | None,
    cache_dir: Path,
    chat_every: int = 0,
) -> dict[str, torch.Tensor]:
    """C (in, in) for each module, read from the cache or computed (all missing ones in one pass) and
    cached. The cache key includes the text files' names and sizes, so the data dir is always needed, and
    `chat_every` (see `token_windows`)."""
    if data_dir is None:
        raise InvalidInput("ROME needs RomeConfig.data_dir (the plain text its statistics come from)")
    model_id = model_fingerprint(model)
    files = text_files(data_dir.expanduser())
    data_id = _data_fingerprint(files, seq_len, chat_every)
    result: dict[str, torch.Tensor] = {}
    todo: list[str] = []
    for module in modules:
        path = cache_path(cache_dir, model_id, data_id, module, n_tokens)
        if path.exists():
            result[module] = load_file(path)["C"]
            log.debug("ROME statistics for %s from %s", module, path)
        else:
            todo.append(module)
    if todo:
        computed = _collect(model, tokenizer, todo, files, n_tokens, seq_len, chat_every)
        for module, c in computed.items():
            path = cache_path(cache_dir, model_id, data_id, module, n_tokens)
            atomic_write_bytes(
                path, save({"C": c.contiguous()}, metadata={"module": module, "tokens": str(n_tokens)})
            )
            log.info("ROME statistics for %s cached at %s", module, path)
        result.update(computed)
    return result
