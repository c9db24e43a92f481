"""Reading a module's inputs during a forward pass, and cutting the pass short once they are read.

Hooks installed here live only inside the `with` block: the model leaves exactly as it came in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import torch
from torch import nn

from consolidation.hooks import this_thread_only


class StopForward(Exception):
    """Raised by a hook once everything needed is captured; layers above it never run."""


@contextmanager
def capture_inputs(
    model: nn.Module, names: list[str], stop_after: str | None = None
) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, each forward pass stores the first positional input of every module in `names`
    (`captured[name]`, shape (B, T, in)); if `stop_after` is given, the pass raises `StopForward` right
    after that module's input is stored. Use `run_until_stopped` to call the model.
    """
    captured: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            captured[name] = args[0].detach()
            if name == stop_after:
                raise StopForward

        return hook

    try:
        for name in names:
            handles.append(
                model.get_submodule(name).register_forward_pre_hook(this_thread_only(make_hook(name)))
            )
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def run_until_stopped(model: nn.Module, **inputs: Any) -> None:
    """Call `model(**inputs)`; a `StopForward` from a capture hook ends the pass early and is swallowed."""
    with suppress(StopForward):
        model(**inputs, use_cache=False)


@contextmanager
def add_to_output(
    module: nn.Module, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> Iterator[None]:
    """Within the block, `module`'s output y becomes `fn(x, y)` for its input x (a temporary forward hook)."""

    def hook(mod: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        return fn(args[0], output)

    handle = module.register_forward_hook(this_thread_only(hook))
    try:
        yield
    finally:
        handle.remove()
