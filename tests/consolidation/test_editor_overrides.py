"""Editor settings from the command line (`--set FIELD=VALUE`): typed by the config's own annotations."""

from __future__ import annotations

from pathlib import Path

import pytest

from consolidation.editors import get_editor, parse_overrides


def test_values_take_the_type_of_their_field() -> None:
    parsed = parse_overrides(
        "rome", ["layer=6", "v_lr=0.25", "supersede=false", "cov_cache_dir=/tmp/x", "kl_prompts={} is"]
    )
    assert parsed == {
        "layer": 6,
        "v_lr": 0.25,
        "supersede": False,
        "cov_cache_dir": Path("/tmp/x"),
        "kl_prompts": ("{} is",),
    }
    assert get_editor("rome", **parsed).config.layer == 6
    assert parse_overrides("lora", ["layers=4, 5"]) == {"layers": (4, 5)}
    assert parse_overrides("rome", ["held_questions_ridge=0.5"]) == {"held_questions_ridge": 0.5}
    assert parse_overrides("rome", ["held_questions_ridge=None"]) == {"held_questions_ridge": None}
    assert parse_overrides("rome", ["scope=0.5", "scope=none"]) == {"scope": None}  # the last one wins
    assert get_editor("rome", **parse_overrides("rome", ["scope=0.25"])).config.scope == 0.25


@pytest.mark.parametrize(
    ("pair", "error", "message"),
    [
        ("layer", ValueError, "FIELD=VALUE"),
        ("=3", ValueError, "FIELD=VALUE"),
        ("layer=six", ValueError, "layer=six"),
        ("supersede=maybe", ValueError, "true or false"),
        ("held_questions_ridge=small", ValueError, "held_questions_ridge=small"),
        ("no_such_field=1", TypeError, "no field"),
    ],
)
def test_bad_overrides_are_named(pair: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_overrides("rome", [pair])


@pytest.mark.parametrize("scope", [0.0, 1.0, -0.5])
def test_a_scope_a_facts_own_prompt_could_not_open_is_refused(scope: float) -> None:
    """Each fact's down row reads exactly 1 at its own key: a threshold of 1 or more could shut it out."""
    with pytest.raises(ValueError, match="scope"):
        get_editor("rome", scope=scope)
