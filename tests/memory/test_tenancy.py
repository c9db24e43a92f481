"""Tenant-scoped user ids: unique per (tenant, user), reversible, never crossing tenants."""

from __future__ import annotations

import pytest

from memory.errors import InvalidInput
from memory.tenancy import in_tenant, public_user, scoped_user


def test_scoped_ids_round_trip_and_stay_apart() -> None:
    assert scoped_user("acme", "alice@example.com") == "acme.alice@example.com"
    assert public_user("acme", "acme.alice@example.com") == "alice@example.com"
    assert scoped_user(None, "alice") == "alice"  # auth off: ids as given
    # a '.' in the user id cannot make two tenants' users collide: tenants have no '.'
    assert scoped_user("a", "b.c") != scoped_user("ab", "c")
    assert in_tenant("acme", "acme.alice") and not in_tenant("acme", "acmex.alice")
    assert not in_tenant("acme", "globex.alice") and in_tenant(None, "globex.alice")


@pytest.mark.parametrize(
    ("tenant", "user"), [("a.b", "u"), ("", "u"), ("acme", ""), ("acme", "../x"), ("acme", "x" * 124)]
)
def test_bad_pairs_are_refused(tenant: str, user: str) -> None:
    with pytest.raises(InvalidInput):
        scoped_user(tenant, user)


def test_a_foreign_id_has_no_public_form() -> None:
    with pytest.raises(InvalidInput):
        public_user("acme", "globex.alice")
