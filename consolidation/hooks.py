"""Temporary forward hooks that act only in the thread that installed them.

Why: the service shares one model between chat turns and consolidation, each in its own thread. Editors and
the drift guard install hooks on that model for a while (capturing a layer's input, adding δ to an output,
recording what the upper blocks receive); a plain PyTorch hook would act on every forward pass meanwhile,
so a chat answered during a consolidation would get another computation's δ, or its capture's early stop.
Wrapped with `this_thread_only`, a hook is a no-op (returns None: the module's own result) elsewhere.
User deltas do not need this: `memory.weights.hooks` reads them from a context variable.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def this_thread_only(hook: F) -> F:
    """`hook`, active only in the calling thread."""
    owner = threading.get_ident()

    @functools.wraps(hook)
    def scoped(*args: Any, **kwargs: Any) -> Any:
        if threading.get_ident() != owner:
            return None
        return hook(*args, **kwargs)

    return scoped  # type: ignore[return-value]
