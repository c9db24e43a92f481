"""Weight editors behind one contract (`Editor`) and one registry; importing this registers the built-ins."""

from consolidation.editors import ftm as ftm  # registers "ftm"
from consolidation.editors import lora as lora  # registers "lora"
from consolidation.editors import rome as rome  # registers "rome"
from consolidation.editors.base import Editor, EditRequest
from consolidation.editors.registry import (
    available_editors,
    config_fields,
    editor_for,
    get_editor,
    parse_overrides,
    register_editor,
)

__all__ = [
    "EditRequest",
    "Editor",
    "available_editors",
    "config_fields",
    "editor_for",
    "get_editor",
    "parse_overrides",
    "register_editor",
]
