"""Method names parse into what each method switches on; bad names say what is allowed."""

from __future__ import annotations

import pytest

from eval.methods import parse_methods

EDITORS = ["ftm", "lora", "rome"]


def test_each_method_switches_on_its_memories() -> None:
    none, prompt, rag, edit, hybrid, hybrid_lora = parse_methods(
        "none,prompt,rag,edit:lora,hybrid,hybrid:lora", "rome", EDITORS
    )
    assert (none.reveal_in_context, none.retrieval, none.editor) == (False, False, None)
    assert prompt.reveal_in_context and not prompt.retrieval and not prompt.agent_window
    assert rag.retrieval and rag.agent_window and rag.editor is None
    assert (edit.name, edit.editor, edit.retrieval) == ("edit:lora", "lora", False)
    assert (hybrid.name, hybrid.editor, hybrid.retrieval) == ("hybrid:rome", "rome", True)
    assert hybrid_lora.editor == "lora" and hybrid_lora.slug == "hybrid-lora"


def test_duplicates_collapse_in_order() -> None:
    assert [m.name for m in parse_methods("rag, none,rag,,hybrid:rome,hybrid", "rome", EDITORS)] == [
        "rag",
        "none",
        "hybrid:rome",
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("memgpt", "unknown method"),
        ("edit", "which editor"),
        ("edit:mend", "no editor named 'mend'"),
        ("rag:rome", "takes no editor"),
        (" , ", "at least one"),
    ],
)
def test_bad_methods_are_named(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_methods(text, "rome", EDITORS)
