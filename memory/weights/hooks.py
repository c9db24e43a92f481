"""Apply a user's delta at forward time through hooks, so the shared base weights never change (Invariant 1).

How: one forward hook per edited module, installed once per model and kept for the model's life. The hook
reads the delta in force from a `contextvars.ContextVar`: each thread (and each asyncio task) sees its own
value, so concurrent requests for different users each get exactly their own memory while sharing one copy
of the base weights. With nothing active, or an active delta that does not touch the module, the hook
returns None and PyTorch keeps the module's own output: bit for bit the base model.

Threads do not inherit context variables: a thread started inside `activate(...)` (transformers' streaming
`generate` runs in a worker thread) sees no delta unless it is started as
`threading.Thread(target=contextvars.copy_context().run, args=(fn, *args))`.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from memory.errors import InvalidInput
from memory.weights.delta import Delta, LowRankUpdate

log = logging.getLogger(__name__)

# module name → its merged update, already on the module's device and dtype
_Prepared = Mapping[str, LowRankUpdate]


class _ModelHooks:
    """Per-model state shared by every `DeltaApplier` of that model: hooks are installed once, ever."""

    def __init__(self, model: nn.Module) -> None:
        # one variable per model, so activating a delta for one model leaves another model's alone
        self.active: contextvars.ContextVar[_Prepared | None] = contextvars.ContextVar(
            f"imprint_active_delta_{id(model)}", default=None
        )
        self.hooked: set[str] = set()
        self.lock = threading.Lock()

    def install(self, model: nn.Module, name: str) -> None:
        """Hook `name` unless it already is; safe to call from several threads."""
        if name in self.hooked:
            return
        with self.lock:
            if name in self.hooked:
                return
            module = model.get_submodule(name)
            module.register_forward_hook(self._hook_for(name, module), with_kwargs=True)
            self.hooked.add(name)
            log.debug("installed delta hook on %s", name)

    def _hook_for(self, name: str, owner: nn.Module) -> Any:
        active = self.active
        owner_ref = weakref.ref(owner)

        def hook(
            module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: torch.Tensor
        ) -> torch.Tensor | None:
            prepared = active.get()
            # `copy.deepcopy(model)` copies hooks by reference; the owner check keeps copies unaffected
            if prepared is None or module is not owner_ref():
                return None
            update = prepared.get(name)
            if update is None:
                return None  # None keeps the module's own output untouched
            x = args[0] if args else kwargs["input"]  # nn.Linear.forward(input), however it was passed
            return update.apply_to_output(x, output)

        return hook


_MODELS: weakref.WeakKeyDictionary[nn.Module, _ModelHooks] = weakref.WeakKeyDictionary()
_MODELS_LOCK = threading.Lock()


def _hooks_of(model: nn.Module) -> _ModelHooks:
    with _MODELS_LOCK:
        state = _MODELS.get(model)
        if state is None:
            state = _MODELS[model] = _ModelHooks(model)
        return state


@dataclass(frozen=True)
class _CacheEntry:
    ref: weakref.ref[Delta]
    prepared: _Prepared


class DeltaApplier:
    """Activates deltas on one model for the current context; the model's parameters are never written.

    Several appliers of the same model share its hooks and its context variable, so creating one per
    `WeightMemory` (or per request) never stacks a delta twice.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._state = _hooks_of(model)
        self._cache: dict[int, _CacheEntry] = {}  # id(delta) → merged factors, while the delta lives
        self._cache_lock = threading.Lock()

    @contextmanager
    def activate(self, delta: Delta | None) -> Iterator[None]:
        """Forward passes of this model in the current context use `delta` (replacing, not adding to, an
        outer activation); the previous one is restored on exit. `None` or an empty delta means the base
        model. Worker threads started inside must run under `contextvars.copy_context().run(...)`.
        """
        prepared = self._prepare(delta) if delta is not None and not delta.is_empty() else None
        if prepared is not None:
            for name in prepared:
                self._state.install(self.model, name)
        token = self._state.active.set(prepared)
        try:
            yield
        finally:
            self._state.active.reset(token)

    def check(self, delta: Delta) -> None:
        """Raise `InvalidInput` unless every update of `delta` fits a 2-d weight of this model."""
        self._prepare(delta)

    def active(self) -> bool:
        """Whether a non-empty delta is in force for this model in the current context."""
        return self._state.active.get() is not None

    def _prepare(self, delta: Delta) -> _Prepared:
        """Merge per module and move factors to each module's device and dtype, once per delta object."""
        key = id(delta)
        with self._cache_lock:
            entry = self._cache.get(key)
            if entry is not None and entry.ref() is delta:
                return entry.prepared
        prepared = {u.module: self._placed(u) for u in delta.merged()}

        def forget(_: weakref.ref[Delta], key: int = key) -> None:
            with self._cache_lock:
                self._cache.pop(key, None)

        with self._cache_lock:
            self._cache[key] = _CacheEntry(weakref.ref(delta, forget), prepared)
        return prepared

    def _placed(self, update: LowRankUpdate) -> LowRankUpdate:
        """`update` checked against its module and cast to the module's weight device and dtype."""
        try:
            module = self.model.get_submodule(update.module)
        except AttributeError as err:
            raise InvalidInput(f"delta targets {update.module!r}, which this model does not have") from err
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            raise InvalidInput(f"delta targets {update.module!r}, which has no 2-d weight to update")
        out_features, in_features = weight.shape
        if update.down.shape[1] != in_features or update.up.shape[0] != out_features:
            raise InvalidInput(
                f"delta for {update.module!r} has down {tuple(update.down.shape)}, up "
                f"{tuple(update.up.shape)}; the module needs (r, {in_features}) and ({out_features}, r)"
            )
        return LowRankUpdate(
            module=update.module,
            down=update.down.detach().to(device=weight.device, dtype=weight.dtype),
            up=update.up.detach().to(device=weight.device, dtype=weight.dtype),
            scoped=None if update.scoped is None else update.scoped.to(device=weight.device),
            opens_at=None if update.opens_at is None else update.opens_at.to(device=weight.device),
        )
