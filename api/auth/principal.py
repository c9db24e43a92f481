"""Who a request acts for: a tenant (from its API key), or everyone's local space when auth is off."""

from __future__ import annotations

from dataclasses import dataclass

from memory.errors import NotFound
from memory.tenancy import in_tenant, public_user, scoped_user


@dataclass(frozen=True)
class Principal:
    """The tenant a request may act for; `tenant=None` is the local single-user setup (auth off)."""

    tenant: str | None

    def user(self, user_id: str) -> str:
        """The stored id of this tenant's `user_id` (validated; a bad id is a 422, never another tenant)."""
        return scoped_user(self.tenant, user_id)

    def public(self, stored_id: str) -> str:
        """The id this tenant knows for a stored user id."""
        return public_user(self.tenant, stored_id)

    def owns(self, stored_id: str) -> bool:
        return in_tenant(self.tenant, stored_id)

    def check_owns(self, stored_id: str, what: str) -> None:
        """NotFound, not Forbidden, for another tenant's record: its existence is none of our business."""
        if not self.owns(stored_id):
            raise NotFound(f"no {what}")
