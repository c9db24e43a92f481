"""Tenants: every user id a client names lives inside the tenant of the API key that named it.

Why a prefix and not a column: the user id already scopes every store (chroma metadata, the weight ledger,
thread keys, run logs, delta folders), so scoping it once here keeps every one of them tenant-safe
without a second filter to forget. A tenant name may not contain '.', so the first '.' of a scoped id
always splits it back into (tenant, user) and no two (tenant, user) pairs share a scoped id.
"""

from __future__ import annotations

import re

from memory.errors import InvalidInput
from memory.ids import MAX_ID_CHARS, validate_user_id

MAX_TENANT_CHARS = 32
TENANT_RULE = "[A-Za-z0-9][A-Za-z0-9_-]* (a letter or digit first, no '.'), at most 32 characters"
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
SEPARATOR = "."


def validate_tenant(tenant: str) -> str:
    """Return `tenant` unchanged if it follows `TENANT_RULE`, else raise `InvalidInput` saying why."""
    if not isinstance(tenant, str) or not _TENANT.fullmatch(tenant):
        raise InvalidInput(f"tenant {tenant!r} must match {TENANT_RULE}")
    return tenant


def scoped_user(tenant: str | None, user_id: str) -> str:
    """The id under which `tenant`'s user `user_id` is stored; `tenant=None` (auth off) keeps it as is."""
    if tenant is None:
        return validate_user_id(user_id)
    validate_tenant(tenant)
    validate_user_id(user_id)
    room = MAX_ID_CHARS - len(tenant) - len(SEPARATOR)
    if len(user_id) > room:
        raise InvalidInput(
            f"user id has {len(user_id)} characters; inside tenant {tenant!r} the limit is {room}"
        )
    return f"{tenant}{SEPARATOR}{user_id}"


def public_user(tenant: str | None, stored_id: str) -> str:
    """The id a client of `tenant` knows for the stored id (the inverse of `scoped_user`)."""
    if tenant is None:
        return stored_id
    prefix = f"{tenant}{SEPARATOR}"
    if not stored_id.startswith(prefix):
        raise InvalidInput(f"user {stored_id!r} is not in tenant {tenant!r}")
    return stored_id[len(prefix) :]


def in_tenant(tenant: str | None, stored_id: str) -> bool:
    """Whether a stored user id belongs to `tenant` (every id does when auth is off)."""
    return tenant is None or stored_id.startswith(f"{tenant}{SEPARATOR}")
