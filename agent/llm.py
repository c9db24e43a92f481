"""Chat-template generation over a loaded causal LM: greedy or sampled, whole or streamed token by token.

Why one lock: on a CPU box concurrent `generate` calls only fight over the same cores, and a later issue's
per-user weight deltas are applied around a forward pass; serialising generation keeps both simple and
correct. Streaming still returns control to the caller token by token.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import TextIteratorStreamer, TextStreamer

from agent.model_loading import LoadedModel
from memory.openmp import pool_released_after

log = logging.getLogger(__name__)

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


# below this, logits / temperature overflows to inf and sampling fails (a fuzzed request sent 1e-300);
# such a temperature means "as good as greedy", so it is decoded greedily
MIN_SAMPLING_TEMPERATURE = 1e-2


@dataclass(frozen=True)
class GenerationConfig:
    """How to decode one answer."""

    max_new_tokens: int = 160
    temperature: float = 0.0  # 0 = greedy, reproducible
    top_p: float = 0.95
    # 1.1: on the bundled 135M model greedy decoding loops ("A classic, but with a twist." x5); in a
    # 3-question try with recalled preferences, 1.1 passed 5 of 6 checks, 1.0 passed 2 and 1.2 passed 3
    repetition_penalty: float = 1.1
    seed: int | None = None  # for sampled decoding
    min_new_tokens: int = 0  # > 0 only to time generations of equal length (`imprint bench chat`)


@dataclass
class Usage:
    """Token counts of one generation, filled in by `ChatLM.generate` or `ChatLM.stream`.

    Why the generation fills it: it already holds the prompt ids and sees every generated id, so counting
    there costs nothing, where re-tokenizing the prompt and the reply afterwards cost two tokenizer passes.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0  # generated tokens, not counting the end-of-sequence or padding tokens


class _CountingStreamer(TextIteratorStreamer):
    """A text streamer that also counts the generated tokens into a `Usage`."""

    def __init__(self, tokenizer: Any, usage: Usage, count: Callable[[Sequence[int]], int]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.usage = usage
        self._count = count

    def put(self, value: torch.Tensor) -> None:
        if not self.next_tokens_are_prompt:  # the first call carries the prompt, which the parent skips
            self.usage.completion_tokens += self._count(value.reshape(-1).tolist())
        super().put(value)


class _TextCallback(TextStreamer):
    """Hands each finished piece of the answer to a callback, in the generating thread itself.

    Why not `stream`: its iterator needs a second thread and a queue between the model and the reader. A
    caller that can take the pieces where they are made (a graph node writing to its stream) saves both.
    """

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None]) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._on_text = on_text
        self._started = False

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if not self._started:
            text = text.lstrip()  # as `generate` strips the whole answer
            self._started = bool(text)
        if text:
            self._on_text(text)


class ChatLM:
    """A loaded model plus its chat template; the only place that calls `model.generate`."""

    def __init__(self, loaded: LoadedModel) -> None:
        # transformers' own annotations are looser than its behaviour; Any keeps mypy useful elsewhere
        self.model: Any = loaded.model
        self.tokenizer: Any = loaded.tokenizer
        self.name = loaded.name
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        """Tokens `text` costs in a prompt (used for the recall budget)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_chat(self, messages: Sequence[Message]) -> torch.Tensor:
        """Prompt token ids (1, T) for `messages`, ending with the assistant's turn header."""
        enc = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return enc["input_ids"].to(self.model.device)

    def _generate_kwargs(self, input_ids: torch.Tensor, cfg: GenerationConfig) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "max_new_tokens": cfg.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "repetition_penalty": cfg.repetition_penalty,
        }
        if cfg.min_new_tokens:
            kwargs["min_new_tokens"] = cfg.min_new_tokens
        if cfg.temperature >= MIN_SAMPLING_TEMPERATURE:
            kwargs.update(do_sample=True, temperature=cfg.temperature, top_p=cfg.top_p)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs

    def generate(
        self,
        messages: Sequence[Message],
        cfg: GenerationConfig | None = None,
        usage: Usage | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> str:
        """The assistant's whole answer to `messages`. Token counts go into `usage` when given, and
        `on_text` receives the answer piece by piece while it is generated, in this thread."""
        cfg = cfg or GenerationConfig()
        input_ids = self.encode_chat(messages)
        kwargs = self._generate_kwargs(input_ids, cfg)
        if on_text is not None:
            kwargs["streamer"] = _TextCallback(self.tokenizer, on_text)
        # the pool is released so that a turn run next from another thread does not find two pools
        # (memory/openmp.py: that halves decoding speed on a small machine)
        with self._lock, pool_released_after(), torch.inference_mode():
            if cfg.seed is not None:
                torch.manual_seed(cfg.seed)
            out = self.model.generate(**kwargs)
        generated = out[0, input_ids.shape[1] :]
        if usage is not None:
            usage.prompt_tokens = int(input_ids.shape[-1])
            usage.completion_tokens = self._counted(generated.tolist())
        return self.tokenizer.decode(generated, skip_special_tokens=True).strip()

    def _counted(self, token_ids: Sequence[int]) -> int:
        """How many of `token_ids` count as answer: not the end-of-sequence or padding tokens."""
        uncounted = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        return sum(1 for t in token_ids if t not in uncounted)

    def stream(
        self, messages: Sequence[Message], cfg: GenerationConfig | None = None, usage: Usage | None = None
    ) -> Iterator[str]:
        """Yield the answer's text piece by piece as tokens are produced; token counts go into `usage`."""
        cfg = cfg or GenerationConfig()
        input_ids = self.encode_chat(messages)
        usage = usage if usage is not None else Usage()
        usage.prompt_tokens = int(input_ids.shape[-1])
        streamer = _CountingStreamer(self.tokenizer, usage, self._counted)
        kwargs = self._generate_kwargs(input_ids, cfg) | {"streamer": streamer}
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with self._lock, pool_released_after(), torch.inference_mode():
                    if cfg.seed is not None:
                        torch.manual_seed(cfg.seed)
                    self.model.generate(**kwargs)
            except BaseException as exc:  # re-raised in the consumer's thread below
                errors.append(exc)
                streamer.end()

        # the worker runs in a copy of the caller's context, so context variables set by the caller (such as
        # which user's weight delta is active) hold inside `generate` too
        ctx = contextvars.copy_context()
        thread = threading.Thread(target=ctx.run, args=(work,), name="imprint-generate", daemon=True)
        thread.start()
        first = True
        for piece in streamer:
            if first:
                piece = piece.lstrip()
                first = False
            if piece:
                yield piece
        thread.join()
        if errors:
            raise errors[0]
