"""Editors register themselves by name; callers look them up by name, never by `if name == ...`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

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


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _convert(text: str, kind: Any) -> Any:
    """`text` as a value of the annotated type `kind` (the types editor configs use)."""
    if kind is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"expected true or false, got {text!r}")
    if kind in (int, float, str):
        return kind(text)
    if kind is Path or kind == (Path | None):
        return Path(text)
    if kind == (float | None):  # "none" restores the default's meaning ("the same as ...")
        return None if text.lower() == "none" else _convert(text, kind.__args__[0])
    if getattr(kind, "__origin__", None) is tuple:
        inner = kind.__args__[0]
        return tuple(_convert(part.strip(), inner) for part in text.split(",") if part.strip())
    raise ValueError(f"cannot set a field of type {kind} from the command line")


def parse_overrides(name: str, pairs: list[str]) -> dict[str, Any]:
    """`["layer=6", "v_lr=0.5"]` as typed config overrides for editor `name` (EasyEdit-style hparams on the
    command line); `ValueError` names the offending pair, `TypeError` an unknown field."""
    cls = _EDITORS.get(name)
    if cls is None:
        raise KeyError(f"no editor named {name!r}; known editors: {', '.join(available_editors()) or 'none'}")
    hints = get_type_hints(cls.config_cls)
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"expected FIELD=VALUE, got {pair!r}")
        if key not in hints:
            raise TypeError(f"{name} config has no field {key!r}; its fields are {sorted(hints)}")
        try:
            out[key] = _convert(text.strip(), hints[key])
        except ValueError as exc:
            raise ValueError(f"{pair!r}: {exc}") from None
    return out


def editor_for(
    name: str, cluster_size: int, data_dir: Path, cache_dir: Path, overrides: Sequence[str] = ()
) -> Editor:
    """A registered editor, given whichever of cluster size, data directory and statistics cache it takes,
    and the `FIELD=VALUE` overrides among `overrides` that its config has (the others belong to other
    editors of the same run; `unclaimed_overrides` finds any that belong to none)."""
    known = config_fields(name)
    offered = {"cluster_size": cluster_size, "data_dir": data_dir, "cov_cache_dir": cache_dir / "rome"}
    chosen = {k: v for k, v in offered.items() if k in known}
    mine = [pair for pair in overrides if pair.partition("=")[0].strip() in known]
    chosen.update(parse_overrides(name, mine))
    return get_editor(name, **chosen)
