"""API keys: random bearer tokens, stored only as SHA-256 hashes.

The tokens carry 256 bits of entropy, so a fast hash is enough (nothing to brute-force);
comparison is by hash lookup plus ``hmac.compare_digest``. A token is shown once, at
creation, and cannot be recovered.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

ROLES = ("producer", "auditor", "admin")
PREFIX = "alk_"

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id      TEXT PRIMARY KEY,
    hash        BLOB NOT NULL UNIQUE,
    role        TEXT NOT NULL,
    controllers TEXT NOT NULL,  -- comma-separated; empty = all (admin only)
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    revoked     INTEGER NOT NULL DEFAULT 0,
    revoked_at  TEXT
);
"""


@dataclass(frozen=True)
class KeyRecord:
    """What ``apikey list`` shows of a key: never its token or hash."""

    key_id: str
    role: str
    controllers: tuple[str, ...]
    created_at: str
    revoked: bool
    revoked_at: str | None

    def to_dict(self) -> dict[str, object]:
        return {"key_id": self.key_id, "role": self.role,
                "controllers": list(self.controllers), "created_at": self.created_at,
                "revoked": self.revoked, "revoked_at": self.revoked_at}


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    role: str
    controllers: tuple[str, ...]

    def may_see(self, controller: str) -> bool:
        return self.role == "admin" or controller in self.controllers


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class ApiKeyStore:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(api_keys)")}
        if "revoked_at" not in columns:  # a store made before keys had a revocation time
            self._db.execute("ALTER TABLE api_keys ADD COLUMN revoked_at TEXT")

    def create(self, role: str, controllers: tuple[str, ...] = ()) -> tuple[str, ApiKey]:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if role == "producer" and len(controllers) != 1:
            raise ValueError("a producer key belongs to exactly one controller")
        if role == "auditor" and not controllers:
            raise ValueError("an auditor key needs at least one controller")
        key_id = secrets.token_hex(6)
        token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        self._db.execute(
            "INSERT INTO api_keys (key_id, hash, role, controllers) VALUES (?,?,?,?)",
            (key_id, _hash(token), role, ",".join(controllers)),
        )
        return token, ApiKey(key_id, role, controllers)

    def authenticate(self, token: str) -> ApiKey | None:
        """The key for ``token``, or None. Takes the same path whether or not it exists."""
        digest = _hash(token)
        row = self._db.execute(
            "SELECT key_id, hash, role, controllers FROM api_keys WHERE hash=? AND revoked=0",
            (digest,),
        ).fetchone()
        stored = row[1] if row else b"\0" * 32
        if not hmac.compare_digest(stored, digest) or row is None:
            return None
        return ApiKey(row[0], row[2], tuple(c for c in row[3].split(",") if c))

    def active(self, key_id: str) -> bool:
        """Whether ``key_id`` names a key that is not revoked."""
        row = self._db.execute("SELECT 1 FROM api_keys WHERE key_id=? AND revoked=0",
                               (key_id,)).fetchone()
        return row is not None

    def revoke(self, key_id: str) -> bool:
        """Revoke ``key_id``; True if it exists (revoked now or before). Takes effect at
        the next request, in every process: ``authenticate`` reads the table each time
        (no cache), and a web session checks ``active`` on every page."""
        cur = self._db.execute(
            "UPDATE api_keys SET revoked=1, revoked_at=COALESCE(revoked_at, "
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) WHERE key_id=?", (key_id,))
        return cur.rowcount == 1

    def record(self, key_id: str) -> KeyRecord | None:
        found = [r for r in self.list() if r.key_id == key_id]
        return found[0] if found else None

    def list(self) -> list[KeyRecord]:
        """Every key, oldest first, revoked ones included (an auditor asks who had
        access, not only who has it now)."""
        rows = self._db.execute(
            "SELECT key_id, role, controllers, created_at, revoked, revoked_at "
            "FROM api_keys ORDER BY created_at, key_id").fetchall()
        return [KeyRecord(r[0], r[1], tuple(c for c in r[2].split(",") if c), r[3],
                          bool(r[4]), r[5]) for r in rows]

    def close(self) -> None:
        self._db.close()
