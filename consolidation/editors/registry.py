"""Editors register themselves by name; callers look them up by name, never by `if name == ...`."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, TypeVar

from consolidation.editors.base import Editor

E = TypeVar("E", bound=type[Editor])

_EDITORS: dict[str, type[Editor]] = {}


def register_editor(cls: E) -> E:
    """Class decorator: make `cls` available as `get_editor(cls.name)`."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__name__} needs a non-empty class attribute `name` to be registered")
    existing = _EDITORS.get(name)
    if existing is not None and existing is not cls:
        raise ValueError(f"editor name {name!r} is taken by {existing.__qualname__}")
    _EDITORS[name] = cls
    return cls


def available_editors() -> list[str]:
    """Registered editor names, sorted."""
    return sorted(_EDITORS)


def config_fields(name: str) -> set[str]:
    """Field names of editor `name`'s config, so callers can pass only the settings it understands."""
    cls = _EDITORS.get(name)
    if cls is None:
        raise KeyError(f"no editor named {name!r}; known editors: {', '.join(available_editors()) or 'none'}")
    return {f.name for f in fields(cls.config_cls)}


def get_editor(name: str, **config_overrides: Any) -> Editor:
    """A fresh editor `name` with its default config, fields overridden by `config_overrides`."""
    cls = _EDITORS.get(name)
    if cls is None:
        raise KeyError(f"no editor named {name!r}; known editors: {', '.join(available_editors()) or 'none'}")
    config = cls.config_cls()
    known = {f.name for f in fields(config)}
    unknown = sorted(set(config_overrides) - known)
    if unknown:
        raise TypeError(f"{name} config has no field(s) {unknown}; its fields are {sorted(known)}")
    return cls(replace(config, **config_overrides))
