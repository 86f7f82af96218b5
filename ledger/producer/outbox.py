"""The producer's durable outbox: what the business system handed over, until the ledger
has it.

One SQLite file (WAL, ``synchronous=FULL``), owned by one process at a time (an exclusive
``flock`` on ``FILE.lock``, released by the kernel when that process dies, even by
``kill -9``). Four tables:

- ``outbox``: signed envelopes still to deliver, in the order they were emitted, with the
  exact bytes that will be sent (and re-sent: the same bytes under the same ``event_id``
  make a resend a ``duplicate`` at the ledger, never a second event);
- ``receipts``: what the ledger answered for each delivered event (index, leaf hash), and
  the leaf hash computed here from the bytes sent, so an inclusion proof can be checked
  against what this producer signed, not just what the ledger says it stored;
- ``dead_letter``: events the ledger refused (a per-event rejection code): kept with the
  code and detail for a person to look at, never retried;
- ``checkpoints``: the largest checkpoint per log an inclusion check verified, so a later
  one that is not consistent with it (a fork shown to this producer) is caught.

A row is in exactly one of ``outbox`` and ``dead_letter`` or gone to ``receipts``; the move
happens in one transaction, so a crash leaves each event either still queued (sent again,
answered ``duplicate``) or settled. Nothing here is a key: the data keys used for sealing
live only in the producer's memory.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS outbox (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id   TEXT NOT NULL UNIQUE,
        controller TEXT NOT NULL,
        type       TEXT NOT NULL,
        body       BLOB NOT NULL,
        leaf_hash  TEXT NOT NULL,
        created_us INTEGER NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0,
        last_error TEXT)""",
    """CREATE TABLE IF NOT EXISTS receipts (
        event_id     TEXT PRIMARY KEY,
        controller   TEXT NOT NULL,
        status       TEXT NOT NULL,
        idx          INTEGER,
        leaf_hash    TEXT,
        local_leaf   TEXT NOT NULL,
        created_us   INTEGER NOT NULL,
        delivered_us INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dead_letter (
        event_id   TEXT PRIMARY KEY,
        controller TEXT NOT NULL,
        type       TEXT NOT NULL,
        body       BLOB NOT NULL,
        code       TEXT NOT NULL,
        detail     TEXT,
        created_us INTEGER NOT NULL,
        failed_us  INTEGER NOT NULL)""",
    # The largest checkpoint of each log an inclusion check verified: every later one must
    # be consistent with it, or the ledger showed this producer a fork.
    """CREATE TABLE IF NOT EXISTS checkpoints (
        controller TEXT PRIMARY KEY,
        size       INTEGER NOT NULL,
        root       TEXT NOT NULL)""",
)


class OutboxLocked(RuntimeError):
    """Another live process holds this outbox: two senders would deliver one queue twice
    over and race on its receipts."""


@dataclass(frozen=True)
class Queued:
    """One event waiting in the outbox."""

    seq: int
    event_id: str
    controller: str
    type: str
    body: bytes
    leaf_hash: str
    created_us: int
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class Settled:
    """What became of one sent event: ``status`` ``accepted`` / ``duplicate`` (HTTP, with
    the ledger's index and leaf hash), ``delivered`` (on the Kafka intake topic; the index
    comes with the first inclusion proof), or ``rejected`` (with ``code``)."""

    event_id: str
    status: str
    index: int | None = None
    leaf_hash: str | None = None
    code: str | None = None
    detail: str | None = None


def now_us() -> int:
    return time.time_ns() // 1000


class Outbox:
    """The SQLite outbox. ``path=None`` keeps it in memory: no durability at all (a
    crash loses what is queued), for benchmarks and for producers that say so."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._lockfile: Any = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._lockfile = open(f"{path}.lock", "a+b")  # noqa: SIM115 - held until close
            try:
                fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._lockfile.close()
                raise OutboxLocked(f"outbox {path} is in use by another process") from None
        self._db = sqlite3.connect(str(path) if path else ":memory:",
                                   check_same_thread=False, isolation_level=None)
        if path is not None:
            os.chmod(path, 0o600)
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is fsynced before it returns, so an event ``emit`` returned
            # for is on disk even if the machine loses power right after.
            self._db.execute("PRAGMA synchronous=FULL")
        for stmt in SCHEMA:
            self._db.execute(stmt)
        self.queued = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]

    # -- writing ---------------------------------------------------------------------

    def add(self, rows: Sequence[tuple[str, str, str, bytes, str]]) -> None:
        """Queue ``(event_id, controller, type, body, leaf_hash)`` rows in one durable
        transaction. An ``event_id`` already queued raises ``sqlite3.IntegrityError`` and
        nothing of the call is kept."""
        created = now_us()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO outbox (event_id, controller, type, body, leaf_hash, "
                    "created_us) VALUES (?, ?, ?, ?, ?, ?)",
                    [(*r, created) for r in rows])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.queued += len(rows)

    def settle(self, sent: Sequence[Queued], outcomes: Iterable[Settled]) -> None:
        """Move each sent event to ``receipts`` or ``dead_letter``, in one transaction."""
        by_id = {q.event_id: q for q in sent}
        done = now_us()
        receipts, dead, gone = [], [], []
        for o in outcomes:
            q = by_id[o.event_id]
            gone.append((q.seq,))
            if o.status == "rejected":
                dead.append((q.event_id, q.controller, q.type, q.body, o.code or "",
                             o.detail, q.created_us, done))
            else:
                receipts.append((q.event_id, q.controller, o.status, o.index, o.leaf_hash,
                                 q.leaf_hash, q.created_us, done))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO receipts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    receipts)
                self._db.executemany(
                    "INSERT OR REPLACE INTO dead_letter VALUES (?, ?, ?, ?, ?, ?, ?, ?)", dead)
                self._db.executemany("DELETE FROM outbox WHERE seq = ?", gone)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self.queued -= len(gone)

    def failed_attempt(self, sent: Sequence[Queued], error: str) -> None:
        """Count one more failed try of these events (kept queued) and why."""
        with self._lock:
            self._db.executemany(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
                [(error[:500], q.seq) for q in sent])

    def record_index(self, event_id: str, index: int, leaf_hash: str) -> None:
        """The ledger's index and leaf hash of an event delivered through Kafka, learnt
        from its first inclusion proof."""
        with self._lock:
            self._db.execute("UPDATE receipts SET idx = ?, leaf_hash = ? WHERE event_id = ?",
                             (index, leaf_hash, event_id))

    def keep_checkpoint(self, controller: str, size: int, root: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)",
                             (controller, size, root))

    def forget(self, before_us: int) -> int:
        """Drop receipts and dead letters settled before ``before_us``; how many."""
        with self._lock:
            n = self._db.execute("DELETE FROM receipts WHERE delivered_us < ?",
                                 (before_us,)).rowcount
            n += self._db.execute("DELETE FROM dead_letter WHERE failed_us < ?",
                                  (before_us,)).rowcount
        return n

    # -- reading ---------------------------------------------------------------------

    def checkpoint(self, controller: str) -> tuple[int, str] | None:
        with self._lock:
            row = self._db.execute("SELECT size, root FROM checkpoints WHERE controller = ?",
                                   (controller,)).fetchone()
        return None if row is None else (row[0], row[1])

    def head(self, limit: int, max_bytes: int) -> list[Queued]:
        """The oldest queued events, at most ``limit`` and about ``max_bytes`` of bodies
        (always at least one)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, controller, type, body, leaf_hash, created_us, "
                "attempts, last_error FROM outbox ORDER BY seq LIMIT ?", (limit,)).fetchall()
        out: list[Queued] = []
        size = 0
        for r in rows:
            size += len(r[4]) + 1
            if out and size > max_bytes:
                break
            out.append(Queued(*r))
        return out

    def oldest_us(self) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT min(created_us) FROM outbox").fetchone()
        return row[0]

    def pending(self, limit: int = 1000) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, controller, type, created_us, attempts, last_error "
                "FROM outbox ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [{"event_id": r[0], "controller": r[1], "type": r[2], "created_us": r[3],
                 "attempts": r[4], "last_error": r[5]} for r in rows]

    def receipt(self, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT event_id, controller, status, idx, leaf_hash, local_leaf, "
                "delivered_us FROM receipts WHERE event_id = ?", (event_id,)).fetchone()
        if row is None:
            return None
        return {"event_id": row[0], "controller": row[1], "status": row[2], "index": row[3],
                "leaf_hash": row[4], "local_leaf_hash": row[5], "delivered_us": row[6]}

    def is_queued(self, event_id: str) -> bool:
        return self.queued_body(event_id) is not None

    def queued_body(self, event_id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM outbox WHERE event_id = ?",
                                   (event_id,)).fetchone()
        return None if row is None else row[0]

    def dead_letter(self, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT event_id, controller, type, code, detail, failed_us FROM dead_letter "
                "WHERE event_id = ?", (event_id,)).fetchone()
        return None if row is None else dict(zip(
            ("event_id", "controller", "type", "code", "detail", "failed_us"), row,
            strict=True))

    def dead_letters(self, limit: int = 1000) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, controller, type, code, detail, failed_us FROM dead_letter "
                "ORDER BY failed_us LIMIT ?", (limit,)).fetchall()
        return [{"event_id": r[0], "controller": r[1], "type": r[2], "code": r[3],
                 "detail": r[4], "failed_us": r[5]} for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            sent = self._db.execute("SELECT count(*) FROM receipts").fetchone()[0]
            dead = self._db.execute("SELECT count(*) FROM dead_letter").fetchone()[0]
        return {"queued": self.queued, "sent": sent, "failed": dead}

    def close(self) -> None:
        with self._lock:
            self._db.close()
        if self._lockfile is not None:
            self._lockfile.close()
            self._lockfile = None
