"""API keys: hashed at rest, bound to a tenant, revocable; and the `imprint keys` commands."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from api.auth import KeyStore
from memory.errors import InvalidInput, NotFound
from tests.api.conftest import imprint_env


def test_a_key_authenticates_as_its_tenant_and_only_its_hash_is_stored(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    key, record = store.create("acme", "ci")
    other, _ = store.create("globex")
    assert key.startswith(f"imp_{record.key_id}_") and len(key) > 40
    found = store.authenticate(key)
    assert found is not None and found.tenant == "acme" and found.label == "ci"
    assert store.authenticate(other).tenant == "globex"  # type: ignore[union-attr]
    store.close()
    dump = "\n".join(sqlite3.connect(tmp_path / "keys.sqlite").iterdump())
    assert key not in dump and key.split("_")[-1] not in dump  # neither the key nor its secret at rest


@pytest.mark.parametrize("attempt", ["", "imp_", "imp_x_y", "Bearer imp_x", "x" * 10_000])
def test_unknown_or_malformed_keys_fail(tmp_path: Path, attempt: str) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    store.create("acme")
    assert store.authenticate(attempt) is None


def test_a_revoked_key_stops_working_and_stays_listed(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.sqlite")
    key, record = store.create("acme")
    revoked = store.revoke(record.key_id)
    assert not revoked.active and store.authenticate(key) is None
    assert [k.key_id for k in store.list("acme")] == [record.key_id]
    assert store.revoke(record.key_id).revoked == revoked.revoked  # revoking twice changes nothing
    with pytest.raises(NotFound):
        store.revoke("nope")


@pytest.mark.parametrize("tenant", ["", "a.b", "a/b", "-x", "x" * 33, "a b"])
def test_bad_tenant_names_are_refused(tmp_path: Path, tenant: str) -> None:
    with pytest.raises(InvalidInput):
        KeyStore(tmp_path / "keys.sqlite").create(tenant)


def test_keys_commands(tmp_path: Path) -> None:
    def imprint(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "api.cli", *args],
            capture_output=True,
            text=True,
            env=imprint_env(tmp_path, COLUMNS="200"),
            timeout=120,
        )

    made = imprint("keys", "create", "--tenant", "acme", "--label", "laptop")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("imp_") and "cannot be shown again" in made.stderr
    listed = imprint("keys", "list")
    assert "acme" in listed.stdout and "laptop" in listed.stdout and key not in listed.stdout
    key_id = key.split("_")[1]
    assert imprint("keys", "revoke", key_id).returncode == 0
    assert "revoked" in imprint("keys", "list").stdout
    assert KeyStore(tmp_path / "keys.sqlite").authenticate(key) is None
    bad = imprint("keys", "create", "--tenant", "a.b")
    assert bad.returncode == 2 and "tenant" in bad.stderr
