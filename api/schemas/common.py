"""Shapes shared by every resource."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, Field

from memory.ids import MAX_ID_CHARS

# ids as the schema states them; the full rule (also: no '..') is checked by memory.ids, also a 422
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$"
_ID_RULE = "Letters, digits and _ . @ - (a letter or digit first), at most 128 characters, no '..'."
UserPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=MAX_ID_CHARS, description=_ID_RULE)]
RecordPath = Annotated[str, Path(pattern=ID_PATTERN, max_length=MAX_ID_CHARS, description=_ID_RULE)]
UserQuery = Annotated[
    str, Query(pattern=ID_PATTERN, max_length=MAX_ID_CHARS, description=f"Whose memories. {_ID_RULE}")
]
UserField = Annotated[
    str,
    Field(pattern=ID_PATTERN, max_length=MAX_ID_CHARS, description=f"The user (in your tenant). {_ID_RULE}"),
]


class ErrorInfo(BaseModel):
    message: str
    type: str
    code: int


class ErrorPublic(BaseModel):
    """`detail` as FastAPI clients expect; `error` as OpenAI clients parse it (they show its message)."""

    detail: str
    error: ErrorInfo


ERROR_TYPES = {
    401: "authentication_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    503: "service_unavailable",
}


def error_body(status: int, detail: str) -> dict[str, Any]:
    return {
        "detail": detail,
        "error": {"message": detail, "type": ERROR_TYPES.get(status, "error"), "code": status},
    }


def iso(unix_time: float | None) -> str | None:
    """Unix seconds as ISO 8601 in UTC (what JSON clients parse without guessing the unit)."""
    return None if unix_time is None else datetime.fromtimestamp(unix_time, UTC).isoformat()


Responses = dict[int | str, dict[str, Any]]
ERRORS: Responses = {
    401: {"model": ErrorPublic, "description": "Missing, malformed or revoked API key."},
    404: {"model": ErrorPublic, "description": "No such record for this tenant."},
    413: {"model": ErrorPublic, "description": "Request body too large."},
    422: {"model": ErrorPublic, "description": "Invalid input; nothing was stored."},
}
BUSY: Responses = {
    409: {"model": ErrorPublic, "description": "A consolidation of this user is running; retry later."}
}
UNAVAILABLE: Responses = {
    503: {"model": ErrorPublic, "description": "This deployment runs without consolidation."}
}
