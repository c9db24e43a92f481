"""Validation of the identifiers and texts that callers hand to the memory package.

Why so strict: user ids later become directory names (per-user weight deltas, ledgers), so an id must be
unable to name anything outside its own folder. Record ids share the same rule so that every id in the
system can be logged, put in a URL or used as a file name without escaping. Every check raises
`InvalidInput` naming the bad value and the rule it broke, before anything is written.
"""

from __future__ import annotations

import re

from memory.errors import InvalidInput

MAX_ID_CHARS = 128  # long enough for a UUID, an email or an external system's key; short enough for a path
ID_RULE = "[A-Za-z0-9][A-Za-z0-9_.@-]* (a letter or digit first), at most 128 characters, no '..'"
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*")
_SHOWN_CHARS = 40  # how much of a bad value an error message quotes


def _shown(value: object) -> str:
    """`repr` of a bad value, cut short so an oversized input cannot flood a log line."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS + 2 else text[:_SHOWN_CHARS] + "...'"


def _validate_id(value: object, what: str) -> str:
    """Check one id against `ID_RULE`; the specific checks come first so the message says what was wrong."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__} {_shown(value)}")
    if not value:
        raise InvalidInput(f"{what} is empty; it must match {ID_RULE}")
    if len(value) > MAX_ID_CHARS:
        raise InvalidInput(f"{what} {_shown(value)} has {len(value)} characters; the limit is {MAX_ID_CHARS}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidInput(
            f"{what} {_shown(value)} contains NUL or control characters; it must match {ID_RULE}"
        )
    if "/" in value or "\\" in value:
        raise InvalidInput(f"{what} {_shown(value)} contains a path separator; it must match {ID_RULE}")
    if ".." in value:
        raise InvalidInput(f"{what} {_shown(value)} contains '..'; it must match {ID_RULE}")
    if not _ID_PATTERN.fullmatch(value):
        raise InvalidInput(f"{what} {_shown(value)} has characters outside the rule {ID_RULE}")
    return value


def validate_user_id(user_id: str) -> str:
    """Return `user_id` unchanged if it is safe as a directory name and a chroma filter value."""
    return _validate_id(user_id, "user id")


def validate_record_id(record_id: str, what: str = "record id") -> str:
    """Return `record_id` unchanged if it follows the same rule as user ids; `what` names it in errors."""
    return _validate_id(record_id, what)


def validate_text(text: str, max_chars: int, what: str = "text") -> str:
    """Return `text` unchanged if it has some non-space content and at most `max_chars` characters.

    Text is not stripped or normalised: evidence is the user's own words and is kept as said.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"{what} must be a string, got {type(text).__name__} {_shown(text)}")
    if not text.strip():
        raise InvalidInput(f"{what} is empty or whitespace only; give some text")
    if len(text) > max_chars:
        raise InvalidInput(f"{what} {_shown(text)} has {len(text)} characters; the limit is {max_chars}")
    return text
