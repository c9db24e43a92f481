"""Id and text validation: what is refused, and that the message names the value and the rule."""

from __future__ import annotations

import pytest

from memory.errors import InvalidInput
from memory.ids import MAX_ID_CHARS, validate_record_id, validate_text, validate_user_id

GOOD_IDS = ["alice", "a", "A9", "user_42", "bob@example.com", "x-y.z", "0", "a" * MAX_ID_CHARS]
BAD_IDS = [
    ("", "empty"),
    ("a" * (MAX_ID_CHARS + 1), "limit"),
    ("a\x00b", "control"),
    ("a\nb", "control"),
    ("a\tb", "control"),
    ("a/b", "path separator"),
    ("a\\b", "path separator"),
    ("/etc", "path separator"),
    ("../x", "path separator"),
    ("..", "'..'"),
    ("a..b", "'..'"),
    (".hidden", "outside"),
    ("-rf", "outside"),
    ("_x", "outside"),
    ("a b", "outside"),
    ("café", "outside"),
    ("a:b", "outside"),
    ("a*", "outside"),
]


@pytest.mark.parametrize("value", GOOD_IDS)
def test_good_ids_pass_unchanged(value: str) -> None:
    assert validate_user_id(value) == value
    assert validate_record_id(value) == value


@pytest.mark.parametrize(("value", "why"), BAD_IDS)
def test_bad_ids_are_refused_with_a_reason(value: str, why: str) -> None:
    for check in (validate_user_id, validate_record_id):
        with pytest.raises(InvalidInput) as err:
            check(value)
        assert why in str(err.value)


def test_message_names_the_value_and_the_rule() -> None:
    with pytest.raises(InvalidInput, match=r"user id 'a b'.*\[A-Za-z0-9\]"):
        validate_user_id("a b")


def test_long_value_is_cut_short_in_the_message() -> None:
    with pytest.raises(InvalidInput) as err:
        validate_user_id("x" * 10_000)
    assert len(str(err.value)) < 300


@pytest.mark.parametrize("value", [None, 5, b"alice"])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(InvalidInput, match="must be a string"):
        validate_user_id(value)  # type: ignore[arg-type]


def test_record_id_message_uses_given_name() -> None:
    with pytest.raises(InvalidInput, match="observation id"):
        validate_record_id("", "observation id")


def test_validate_text() -> None:
    assert validate_text("  I get seasick  ", 100) == "  I get seasick  "
    for bad in ["", "   ", "\n\t"]:
        with pytest.raises(InvalidInput, match="empty"):
            validate_text(bad, 100)
    with pytest.raises(InvalidInput, match="limit is 5"):
        validate_text("abcdef", 5, "evidence")
    with pytest.raises(InvalidInput, match="must be a string"):
        validate_text(None, 5)  # type: ignore[arg-type]
