"""The key store: the keys that make personal data readable, kept outside the log.

The log is immutable, so the right to erasure is met by crypto-shredding: personal details
an event must keep travel in its ``sealed`` field, encrypted under a per-subject data key
that lives here, and erasing the subject destroys those keys. Events, hashes, signatures and
proofs still verify; the personal data can no longer be read by anyone.

What is kept, per controller:
- the controller's subject key (HMAC key of pseudonyms, ``psn:…``);
- the data keys of its subjects (``kid`` ``dk_…``), each wrapped with AES-256-GCM under the
  controller's KEK (ledger/kek.py) with the controller, subject and kid as associated data,
  so a wrapped key copied to another row, subject or tenant does not unwrap;
- destroyed keys as tombstones (kid, subject, when, by which ``subject.erased`` event), so
  the API can say "erased" rather than "unknown key".

A SQLite file (``DIR/keystore.sqlite``, ``secure_delete`` on, so a destroyed key's bytes
are overwritten, not left in a free page) by default; PostgreSQL (``keystore_dsn``) in
production, shared by every API and sequencer process of the ledger.

A backup of the key store restored after an erasure would bring destroyed keys back; the
log says what was erased, so ``reapply_erasures`` (run whenever a Ledger opens) destroys
them again before anything reads them.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.clock import Clock, SystemClock, format_rfc3339, parse_rfc3339
from ledger.codes import CodedError
from ledger.config import Config
from ledger.encoding import b64url
from ledger.kek import (
    KekError,
    controller_kek,
    kek_file,
    kek_id,
    kek_source,
    load_kek,
    parse_kek,
    write_kek_file,
)
from ledger.log.base import Log, StoredEvent

DSN_ENV = "AUDITLEDGER_KEYSTORE_DSN"
ERASED_TYPE = "subject.erased"
SUBJECT_PURPOSE = "subject"
NONCE = 12

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS keystore_meta (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL)""",
    # One row per controller and purpose ("subject": the HMAC key of pseudonyms).
    """CREATE TABLE IF NOT EXISTS controller_keys (
        controller TEXT NOT NULL,
        purpose    TEXT NOT NULL,
        wrapped    {blob} NOT NULL,
        created_us BIGINT NOT NULL,
        PRIMARY KEY (controller, purpose))""",
    # wrapped is NULL once destroyed: the row stays as the tombstone.
    """CREATE TABLE IF NOT EXISTS data_keys (
        controller   TEXT NOT NULL,
        kid          TEXT NOT NULL,
        subject      TEXT NOT NULL,
        wrapped      {blob},
        created_us   BIGINT NOT NULL,
        destroyed_at TEXT,
        erased_by    TEXT,
        PRIMARY KEY (controller, kid))""",
    "CREATE INDEX IF NOT EXISTS data_keys_subject ON data_keys (controller, subject)",
    # At most one live data key per subject: two processes making one race safely.
    """CREATE UNIQUE INDEX IF NOT EXISTS data_keys_live ON data_keys (controller, subject)
        WHERE wrapped IS NOT NULL""",
    # Every erasure applied: when, until which key creation time, by which event.
    """CREATE TABLE IF NOT EXISTS erasures (
        controller TEXT NOT NULL,
        subject    TEXT NOT NULL,
        erased_by  TEXT NOT NULL,
        erased_at  TEXT NOT NULL,
        until_us   BIGINT NOT NULL,
        PRIMARY KEY (controller, erased_by))""",
)


class KeyStoreError(CodedError):
    """``code`` is stable: ``kek_mismatch`` (via KekError), ``backup_unsupported``,
    ``key_unwrap_failed`` (a wrapped key that does not open under the KEK: tampering)."""


@dataclass(frozen=True, slots=True)
class Key:
    kid: str
    subject: str
    key: bytes


@dataclass(frozen=True, slots=True)
class Destroyed:
    kid: str
    subject: str
    destroyed_at: str
    erased_by: str | None


@dataclass(frozen=True, slots=True)
class SubjectKeys:
    live: list[str]
    destroyed: list[str]
    erased_at: str | None  # the last erasure's time, RFC 3339

    @property
    def known(self) -> bool:
        return bool(self.live or self.destroyed or self.erased_at)


def _us(dt: datetime) -> int:
    return int(dt.astimezone(UTC).timestamp() * 1_000_000)


def _aad(controller: str, slot: str, subject: str = "") -> bytes:
    return b"auditledger/wrap/1\n" + "\n".join((controller, slot, subject)).encode()


def _wrap(ckek: bytes, controller: str, slot: str, subject: str, key: bytes) -> bytes:
    """nonce (12 bytes) + AES-256-GCM(controller KEK, key, AAD = controller, slot, subject)."""
    nonce = secrets.token_bytes(NONCE)
    return nonce + AESGCM(ckek).encrypt(nonce, key, _aad(controller, slot, subject))


class KeyStore:
    """Thread-safe; one connection guarded by a lock (key operations are short)."""

    def __init__(self, conn: Any, dialect: str, kek: bytes, clock: Clock | None = None,
                 location: str = "") -> None:
        self._conn, self._dialect, self._kek = conn, dialect, kek
        self._clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._keks: dict[str, bytes] = {}
        self._unwrapped: dict[bytes, bytes] = {}  # wrapped bytes -> key (rows still rule)
        self.location = location
        blob = "BLOB" if dialect == "sqlite" else "BYTEA"
        with self._tx() as cur:
            for stmt in SCHEMA:
                cur.execute(stmt.format(blob=blob))
        self._check_kek()

    # -- plumbing ------------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        return sql if self._dialect == "sqlite" else sql.replace("?", "%s")

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                if self._dialect == "sqlite":
                    cur.execute("BEGIN IMMEDIATE")
                yield _Cursor(cur, self._sql)
                self._conn.commit()
            except BaseException:
                self._conn.rollback()
                raise
            finally:
                cur.close()

    def _check_kek(self) -> None:
        """The first KEK a store sees is its KEK; any other is refused by name."""
        given = kek_id(self._kek)
        with self._tx() as cur:
            cur.execute("SELECT value FROM keystore_meta WHERE name = 'kek_id'")
            row = cur.fetchone()
            if row is None:
                cur.execute("INSERT INTO keystore_meta (name, value) VALUES ('kek_id', ?)",
                            (given,))
            elif row[0] != given:
                raise KekError(
                    "kek_mismatch",
                    f"the key store {self.location} is wrapped under {row[0]}, the "
                    f"key-encryption key given is {given}: start with the KEK it was made "
                    "with (AUDITLEDGER_KEK, kek_command or kek_file), or restore the "
                    "matching key-store backup")

    def _ckek(self, controller: str) -> bytes:
        k = self._keks.get(controller)
        if k is None:
            k = self._keks[controller] = controller_kek(self._kek, controller)
        return k

    def _wrap(self, controller: str, slot: str, subject: str, key: bytes) -> bytes:
        return _wrap(self._ckek(controller), controller, slot, subject, key)

    def _unwrap(self, controller: str, slot: str, subject: str, wrapped: bytes) -> bytes:
        wrapped = bytes(wrapped)
        key = self._unwrapped.get(wrapped)
        if key is None:
            try:
                key = AESGCM(self._ckek(controller)).decrypt(
                    wrapped[:NONCE], wrapped[NONCE:], _aad(controller, slot, subject))
            except InvalidTag:
                raise KeyStoreError(
                    "key_unwrap_failed",
                    f"the wrapped key {controller}/{slot} does not open under this KEK: the "
                    "key store was altered or mixed up with another") from None
            self._unwrapped[wrapped] = key
        return key

    # -- subject keys (pseudonyms) -----------------------------------------------------

    def subject_key(self, controller: str, legacy_file: Path | None = None) -> bytes:
        """The controller's HMAC key for ``psn:`` pseudonyms, made on first use.

        ``legacy_file``: a key an older version kept in clear beside the ledger
        (``keys/controllers/C.subject.key``) is taken over, so pseudonyms stay the same, and
        the clear copy removed."""
        with self._tx() as cur:
            cur.execute("SELECT wrapped FROM controller_keys WHERE controller = ? AND "
                        "purpose = ?", (controller, SUBJECT_PURPOSE))
            row = cur.fetchone()
            if row is None:
                key = (legacy_file.read_bytes() if legacy_file and legacy_file.exists()
                       else secrets.token_bytes(32))
                cur.execute(
                    "INSERT INTO controller_keys (controller, purpose, wrapped, created_us) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (controller, SUBJECT_PURPOSE,
                     self._wrap(controller, SUBJECT_PURPOSE, "", key),
                     _us(self._clock.now())))
                cur.execute("SELECT wrapped FROM controller_keys WHERE controller = ? AND "
                            "purpose = ?", (controller, SUBJECT_PURPOSE))
                row = cur.fetchone()
        if legacy_file is not None and legacy_file.exists():
            legacy_file.unlink()
        return self._unwrap(controller, SUBJECT_PURPOSE, "", row[0])

    # -- data keys (sealed fields) -----------------------------------------------------

    def data_key(self, controller: str, subject: str) -> tuple[str, bytes]:
        """The subject's live data key, made on first use (and again after an erasure: a
        person who comes back gets a new key; what was erased stays erased)."""
        with self._tx() as cur:
            row = self._live(cur, controller, subject)
            if row is None:
                kid = "dk_" + b64url(secrets.token_bytes(16))
                key = secrets.token_bytes(32)
                cur.execute(
                    "INSERT INTO data_keys (controller, kid, subject, wrapped, created_us) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (controller, kid, subject, self._wrap(controller, kid, subject, key),
                     _us(self._clock.now())))
                row = self._live(cur, controller, subject)
        assert row is not None
        return row[0], self._unwrap(controller, row[0], subject, row[1])

    @staticmethod
    def _live(cur: _Cursor, controller: str, subject: str) -> tuple[str, bytes] | None:
        cur.execute("SELECT kid, wrapped FROM data_keys WHERE controller = ? AND subject = ? "
                    "AND wrapped IS NOT NULL", (controller, subject))
        row = cur.fetchone()
        return None if row is None else (row[0], bytes(row[1]))

    def key(self, controller: str, kid: str) -> Key | Destroyed | None:
        """What the store knows of ``kid``: the key, its tombstone, or nothing. Read from
        the table every time, so a key another process destroyed is gone here too."""
        with self._tx() as cur:
            cur.execute("SELECT subject, wrapped, destroyed_at, erased_by FROM data_keys "
                        "WHERE controller = ? AND kid = ?", (controller, kid))
            row = cur.fetchone()
        if row is None:
            return None
        subject, wrapped, destroyed_at, erased_by = row
        if wrapped is None:
            return Destroyed(kid, subject, destroyed_at, erased_by)
        return Key(kid, subject, self._unwrap(controller, kid, subject, wrapped))

    def subject_state(self, controller: str, subject: str) -> SubjectKeys:
        with self._tx() as cur:
            cur.execute("SELECT kid, wrapped IS NOT NULL FROM data_keys WHERE controller = ? "
                        "AND subject = ? ORDER BY created_us, kid", (controller, subject))
            rows = cur.fetchall()
            cur.execute("SELECT erased_at FROM erasures WHERE controller = ? AND subject = ? "
                        "ORDER BY until_us DESC LIMIT 1", (controller, subject))
            last = cur.fetchone()
        return SubjectKeys(live=[k for k, live in rows if live],
                           destroyed=[k for k, live in rows if not live],
                           erased_at=last[0] if last else None)

    def destroy(self, controller: str, subject: str, until: str,
                erased_by: str) -> list[str]:
        """Crypto-shred every key of ``subject`` made at or before ``until`` (RFC 3339).
        Idempotent: an erasure applied twice destroys nothing the second time."""
        limit = _us(parse_rfc3339(until))
        now = format_rfc3339(self._clock.now())
        with self._tx() as cur:
            cur.execute("SELECT kid FROM data_keys WHERE controller = ? AND subject = ? AND "
                        "wrapped IS NOT NULL AND created_us <= ?", (controller, subject, limit))
            kids = [r[0] for r in cur.fetchall()]
            for kid in kids:
                cur.execute("UPDATE data_keys SET wrapped = NULL, destroyed_at = ?, "
                            "erased_by = ? WHERE controller = ? AND kid = ?",
                            (now, erased_by, controller, kid))
            cur.execute("INSERT INTO erasures (controller, subject, erased_by, erased_at, "
                        "until_us) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (controller, subject, erased_by, until, limit))
        if kids:
            self._unwrapped.clear()
            self._scrub()
        return kids

    def applied_erasures(self) -> set[tuple[str, str]]:
        """(controller, ``subject.erased`` event id) of every erasure this store applied."""
        with self._tx() as cur:
            cur.execute("SELECT controller, erased_by FROM erasures")
            return {(c, e) for c, e in cur.fetchall()}

    def _scrub(self) -> None:
        """Leave no copy of a destroyed key in the database files: SQLite's WAL is folded
        back and truncated (secure_delete already zeroed the freed bytes); PostgreSQL's
        dead row versions are vacuumed away."""
        with self._lock:
            if self._dialect == "sqlite":
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                self._conn.autocommit = True
                try:
                    self._conn.execute("VACUUM data_keys")
                finally:
                    self._conn.autocommit = False

    # -- operations ----------------------------------------------------------------------

    def rotate_kek(self, new_kek: bytes) -> int:
        """Rewrap every key under ``new_kek`` in one transaction (the log is not touched:
        it holds no key). Returns how many keys were rewrapped."""
        new_ckeks: dict[str, bytes] = {}

        def rewrap(controller: str, slot: str, subject: str, wrapped: bytes) -> bytes:
            key = self._unwrap(controller, slot, subject, wrapped)
            if controller not in new_ckeks:
                new_ckeks[controller] = controller_kek(new_kek, controller)
            return _wrap(new_ckeks[controller], controller, slot, subject, key)

        n = 0
        with self._tx() as cur:
            cur.execute("SELECT controller, purpose, wrapped FROM controller_keys")
            for controller, purpose, wrapped in cur.fetchall():
                cur.execute("UPDATE controller_keys SET wrapped = ? WHERE controller = ? AND "
                            "purpose = ?", (rewrap(controller, purpose, "", wrapped),
                                            controller, purpose))
                n += 1
            cur.execute("SELECT controller, kid, subject, wrapped FROM data_keys "
                        "WHERE wrapped IS NOT NULL")
            for controller, kid, subject, wrapped in cur.fetchall():
                cur.execute("UPDATE data_keys SET wrapped = ? WHERE controller = ? AND kid = ?",
                            (rewrap(controller, kid, subject, wrapped), controller, kid))
                n += 1
            cur.execute("UPDATE keystore_meta SET value = ? WHERE name = 'kek_id'",
                        (kek_id(new_kek),))
        self._kek, self._keks = new_kek, new_ckeks
        self._unwrapped.clear()
        return n

    def backup(self, path: Path) -> None:
        """A consistent copy of a SQLite key store (PostgreSQL: use pg_dump)."""
        if self._dialect != "sqlite":
            raise KeyStoreError("backup_unsupported",
                                "a PostgreSQL key store is backed up with pg_dump")
        path.parent.mkdir(parents=True, exist_ok=True)
        dest = sqlite3.connect(path)
        try:
            with self._lock:
                self._conn.backup(dest)
        finally:
            dest.close()
        os.chmod(path, 0o600)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _Cursor:
    """A DB-API cursor that takes ``?`` placeholders on both SQLite and PostgreSQL."""

    def __init__(self, cur: Any, sql: Any) -> None:
        self._cur, self._fix = cur, sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cur.execute(self._fix(sql), params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()


def open_keystore(cfg: Config, kek: bytes | None = None,
                  clock: Clock | None = None) -> KeyStore:
    """The ledger's key store, unlocked with its KEK (``load_kek`` unless given)."""
    kek = load_kek(cfg) if kek is None else kek
    dsn = os.environ.get(DSN_ENV) or cfg.keystore_dsn
    if dsn:
        import psycopg

        conn = psycopg.connect(dsn)
        return KeyStore(conn, "postgresql", kek, clock, location="(PostgreSQL)")
    conn = sqlite3.connect(cfg.keystore_db, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA secure_delete=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    os.chmod(cfg.keystore_db, 0o600)
    return KeyStore(_AutoTx(conn), "sqlite", kek, clock, location=str(cfg.keystore_db))


class _AutoTx:
    """sqlite3 in autocommit mode with explicit BEGIN IMMEDIATE / COMMIT, so a key made by
    two processes at once is decided by the database, not by Python's implicit BEGIN."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def cursor(self) -> sqlite3.Cursor:
        return self._c.cursor()

    def commit(self) -> None:
        if self._c.in_transaction:
            self._c.execute("COMMIT")

    def rollback(self) -> None:
        if self._c.in_transaction:
            self._c.execute("ROLLBACK")

    def execute(self, sql: str) -> Any:
        return self._c.execute(sql)

    def backup(self, dest: sqlite3.Connection) -> None:
        self._c.backup(dest)

    def close(self) -> None:
        self._c.close()


# -- erasure, as the log records it --------------------------------------------------------


def erasure_until(ev: StoredEvent, env: dict[str, Any] | None = None) -> str:
    """Keys made up to when are destroyed by a stored ``subject.erased``: the later of
    its ``keys_destroyed_at`` and the time the ledger received it, so an erasure back-dated
    by a producer still shreds every key that existed when it was recorded."""
    env = env if env is not None else ev.envelope()
    claimed = parse_rfc3339(env["data"]["keys_destroyed_at"])
    received = parse_rfc3339(ev.received_at)
    return format_rfc3339(max(claimed, received))


def apply_erasure(store: KeyStore, ev: StoredEvent) -> list[str]:
    """Destroy what one stored ``subject.erased`` event erases (idempotent)."""
    env = ev.envelope()
    return store.destroy(ev.controller, env["subject"], erasure_until(ev, env), ev.event_id)


def apply_erasures(store: KeyStore, events: Iterable[StoredEvent]) -> int:
    """``apply_erasure`` for every ``subject.erased`` among ``events``; keys destroyed."""
    return sum(len(apply_erasure(store, ev)) for ev in events if ev.type == ERASED_TYPE)


def reapply_erasures(log: Log, store: KeyStore, controllers: Sequence[str] | None = None
                     ) -> int:
    """Every erasure the log records and the store has not applied, applied: after a key
    store is restored from a backup older than an erasure, the erased keys are destroyed
    before anyone reads them. Erasures the store already records are skipped, so opening a
    ledger costs one read per erasure, not one write. Returns how many keys were destroyed."""
    done = store.applied_erasures()
    n = 0
    for controller in controllers if controllers is not None else [None]:
        todo = (ev for ev in log.events(controller=controller, types=[ERASED_TYPE])
                if (ev.controller, ev.event_id) not in done)
        n += apply_erasures(store, todo)
    return n


def rotate_kek(cfg: Config, new_kek_text: str, store: KeyStore | None = None) -> int:
    """Rewrap the key store under a new KEK. When the KEK comes from the file source the
    file is replaced (atomically) once the store is rewrapped; for ``AUDITLEDGER_KEK`` or
    ``kek_command`` the operator switches that source to the new KEK before the next start
    (until then start-up names the mismatch: ``kek_mismatch``)."""
    new = parse_kek(new_kek_text, "new KEK")
    own = store is None
    store = store or open_keystore(cfg)
    try:
        n = store.rotate_kek(new)
    finally:
        if own:
            store.close()
    if kek_source(cfg) == "file":
        path = kek_file(cfg)
        tmp = path.with_name(path.name + ".new")
        write_kek_file(tmp, new_kek_text.strip())
        os.replace(tmp, path)
    return n
