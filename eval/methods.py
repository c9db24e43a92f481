"""The memory methods an evaluation compares side by side, on the same model and the same items.

| method      | where the preference reaches the model                                                   |
|-------------|------------------------------------------------------------------------------------------|
| `none`      | nowhere: the base model (the floor)                                                      |
| `prompt`    | stated in the context (UPQA: the system prompt, like Personalization Editing's ICE;       |
|             | PrefEval: the turns where the user revealed it stay in the conversation)                 |
| `rag`       | imprint's retrieval memory only: the revealing turns are observed (extractor → chromadb), |
|             | recalled into the system prompt, and the agent keeps its own window of the thread         |
| `edit:NAME` | weights only: editor NAME writes the preference into the item's user; nothing in context |
| `hybrid`    | imprint as it runs: `rag` and the weights of `edit:NAME` together (`hybrid:NAME`; the     |
|             | default editor is the deployment's consolidation editor)                                  |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

KINDS = ("none", "prompt", "rag", "edit", "hybrid")


@dataclass(frozen=True)
class Method:
    """How one method builds a turn: which memories are active (flags), and whose weights."""

    name: str  # as the user wrote it, normalised: "none", "prompt", "rag", "edit:rome", "hybrid:rome"
    kind: str
    editor: str | None = None  # the editor whose weights are applied (edit, hybrid)

    @property
    def reveal_in_context(self) -> bool:
        return self.kind == "prompt"

    @property
    def retrieval(self) -> bool:
        return self.kind in ("rag", "hybrid")

    @property
    def agent_window(self) -> bool:
        """Whether the conversation is cut to the agent's history window, as `imprint serve` does."""
        return self.kind in ("rag", "hybrid")

    @property
    def slug(self) -> str:
        """The method as a file- and user-id-safe word: "edit-rome"."""
        return self.name.replace(":", "-")


def parse_method(text: str, default_editor: str, editors: Sequence[str]) -> Method:
    """One method from its name; `ValueError` names the bad one and the choices."""
    kind, _, editor = text.strip().partition(":")
    if kind not in KINDS:
        raise ValueError(f"unknown method {text!r}; methods are none, prompt, rag, edit:EDITOR, hybrid")
    if kind in ("none", "prompt", "rag"):
        if editor:
            raise ValueError(f"method {kind!r} takes no editor, got {text!r}")
        return Method(kind, kind)
    if kind == "edit" and not editor:
        raise ValueError(f"say which editor: edit:{'|edit:'.join(editors)}")
    editor = editor or default_editor
    if editor not in editors:
        raise ValueError(f"{text!r}: no editor named {editor!r}; known editors: {', '.join(editors)}")
    return Method(f"{kind}:{editor}", kind, editor)


def parse_methods(text: str, default_editor: str, editors: Sequence[str]) -> list[Method]:
    """A comma-separated list of methods, each once, in the order given."""
    methods: list[Method] = []
    for part in text.split(","):
        if part.strip():
            method = parse_method(part, default_editor, editors)
            if method not in methods:
                methods.append(method)
    if not methods:
        raise ValueError("give at least one method")
    return methods
