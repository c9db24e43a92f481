"""API keys, stored hashed, each bound to one tenant.

A key is `imp_<key id>_<secret>`: the key id names the key in listings and revocations without revealing
it; the secret is 32 random bytes. Only SHA-256 of the whole key is stored. A slow password hash would add
nothing here: the secret has 256 bits of entropy, so there is no dictionary to guess from, and a fast hash
keeps authentication off the latency budget of every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from consolidation.sqlite import open_db
from memory.errors import NotFound
from memory.tenancy import validate_tenant

PREFIX = "imp_"
SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    revoked REAL
);
"""


@dataclass(frozen=True)
class ApiKey:
    """A key's record: never its secret."""

    key_id: str
    tenant: str
    label: str
    created: float
    revoked: float | None

    @property
    def active(self) -> bool:
        return self.revoked is None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    """The `api_keys` table; safe to share between the server's threads."""

    def __init__(self, path: Path) -> None:
        self._conn = open_db(path, SCHEMA)
        self._lock = threading.Lock()

    def create(self, tenant: str, label: str = "") -> tuple[str, ApiKey]:
        """A new key for `tenant`: the key itself (shown once, stored nowhere) and its record."""
        validate_tenant(tenant)
        key_id = secrets.token_hex(6)
        key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        with self._lock:
            self._conn.execute(
                "INSERT INTO api_keys (key_id, tenant, hash, label, created) VALUES (?, ?, ?, ?, ?)",
                (key_id, tenant, _digest(key), label, time.time()),
            )
        return key, self.get(key_id)

    def authenticate(self, key: str) -> ApiKey | None:
        """The active key record for `key`, or None for an unknown, malformed or revoked key."""
        if not key.startswith(PREFIX) or len(key) > 256:
            return None
        digest = _digest(key)
        with self._lock:
            row = self._conn.execute(
                "SELECT key_id, tenant, label, created, revoked, hash FROM api_keys WHERE hash = ?", (digest,)
            ).fetchone()
        if row is None or not hmac.compare_digest(row[-1], digest):
            return None
        record = _key(row[:-1])
        return record if record.active else None

    def get(self, key_id: str) -> ApiKey:
        with self._lock:
            row = self._conn.execute(
                "SELECT key_id, tenant, label, created, revoked FROM api_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        if row is None:
            raise NotFound(f"no API key {key_id!r}")
        return _key(row)

    def list(self, tenant: str | None = None) -> list[ApiKey]:
        """Every key (or a tenant's), oldest first, revoked ones included."""
        query = "SELECT key_id, tenant, label, created, revoked FROM api_keys"
        args: tuple[str, ...] = ()
        if tenant is not None:
            query, args = query + " WHERE tenant = ?", (tenant,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY created", args).fetchall()
        return [_key(r) for r in rows]

    def revoke(self, key_id: str) -> ApiKey:
        """Stop accepting a key from now on; its record stays for audit."""
        with self._lock:
            cur = self._conn.execute(
                "UPDATE api_keys SET revoked = ? WHERE key_id = ? AND revoked IS NULL", (time.time(), key_id)
            )
        if cur.rowcount == 0:
            self.get(key_id)  # NotFound for an unknown key; an already revoked one stays as it was
        return self.get(key_id)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _key(row: tuple[object, ...]) -> ApiKey:
    key_id, tenant, label, created, revoked = row[:5]
    return ApiKey(
        key_id=str(key_id),
        tenant=str(tenant),
        label=str(label),
        created=float(created),  # type: ignore[arg-type]
        revoked=None if revoked is None else float(revoked),  # type: ignore[arg-type]
    )
