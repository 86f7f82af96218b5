"""Embedded log of record: one SQLite file in WAL mode.

Durability: ``synchronous=FULL`` makes every commit fsync the WAL, and ``append`` returns
only after its transaction commits, so an acknowledged event survives ``kill -9`` and power
loss. A batch is one transaction: after a crash it is there whole or not at all.

Ordering: ``BEGIN IMMEDIATE`` takes SQLite's write lock before reading the tree heads, so
two processes appending to the same file serialise, and each re-reads the heads the other
left. Leaf indexes therefore stay dense and equal to commit order.
"""

from __future__ import annotations

import base64
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ledger.clock import Clock
from ledger.log.base import Prepared, StaleLog, StoredCheckpoint, StoredEvent
from ledger.merkle import Frontier, NodeGetter
from ledger.sequencer import CheckpointSigner, Plan, Sequencer, Tree

# An event is named by (controller, event_id): idempotency is per tenant (docs/design.md).
EVENTS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    seq         INTEGER PRIMARY KEY,
    controller  TEXT    NOT NULL,
    idx         INTEGER NOT NULL,
    event_id    TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    producer    TEXT    NOT NULL,
    occurred_at TEXT    NOT NULL,
    received_at TEXT    NOT NULL,
    leaf_hash   BLOB    NOT NULL,
    canon_hash  BLOB    NOT NULL,
    body        BLOB    NOT NULL,
    UNIQUE (controller, idx),
    UNIQUE (controller, event_id)
);
"""
SCHEMA = EVENTS_TABLE.format(name="events") + """
CREATE TABLE IF NOT EXISTS nodes (
    controller TEXT    NOT NULL,
    level      INTEGER NOT NULL,
    idx        INTEGER NOT NULL,
    hash       BLOB    NOT NULL,
    PRIMARY KEY (controller, level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads (
    controller TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    frontier   BLOB    NOT NULL,
    cp_size    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    controller TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    root       BLOB    NOT NULL,
    note       TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (controller, size)
);
-- Witness cosignatures (C2SP tlog-cosignature lines), kept beside their checkpoint; one
-- per witness key and checkpoint (``signer`` = the line's key name and key id).
CREATE TABLE IF NOT EXISTS cosignatures (
    controller TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    signer     TEXT    NOT NULL,
    line       TEXT    NOT NULL,
    PRIMARY KEY (controller, size, signer)
);
"""

EVENT_COLS = (
    "seq, controller, idx, event_id, type, producer, occurred_at, received_at, "
    "leaf_hash, canon_hash, body"
)


def cosignature_signer(line: str) -> str:
    """``name keyid``: which key made a signature line (the first 4 bytes name it)."""
    name, _, sig64 = line.rstrip("\n").removeprefix("— ").partition(" ")
    try:
        key_id = base64.b64decode(sig64)[:4].hex()
    except ValueError:
        key_id = sig64
    return f"{name} {key_id}"


def _event(row: tuple) -> StoredEvent:
    return StoredEvent(*row)


def _migrate_global_event_ids(db: sqlite3.Connection) -> None:
    """Logs written before idempotency became per controller have ``event_id UNIQUE``
    across the ledger. That constraint is strictly stronger than the new one, so every
    such log already satisfies ``UNIQUE (controller, event_id)``: the table is rebuilt
    with the new constraint, rows, ``seq`` values and bytes unchanged, in one
    transaction (a crash leaves the old table). Roots, proofs and checkpoints do not
    depend on it."""
    for _, index, unique, *_ in db.execute("PRAGMA index_list(events)").fetchall():
        cols = [r[2] for r in db.execute(f"PRAGMA index_info('{index}')")]
        if unique and cols == ["event_id"]:
            break
    else:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("DROP TABLE IF EXISTS events_per_controller")
        db.execute(EVENTS_TABLE.format(name="events_per_controller"))
        db.execute("INSERT INTO events_per_controller SELECT * FROM events ORDER BY seq")
        db.execute("DROP TABLE events")
        db.execute("ALTER TABLE events_per_controller RENAME TO events")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


class SQLiteLog:
    def __init__(
        self,
        path: Path,
        signer: CheckpointSigner,
        clock: Clock,
        every_events: int = 1000,
        every_seconds: float = 1.0,
    ) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(SCHEMA)
        _migrate_global_event_ids(self._db)
        self.seq = Sequencer(signer, clock, every_events, every_seconds)
        with self._lock:
            self._sync_heads()

    # -- writing ---------------------------------------------------------------------

    def _sync_heads(self) -> None:
        """Reload tree state for every controller whose head moved under us."""
        for controller, size, frontier, cp_size in self._db.execute(
            "SELECT controller, size, frontier, cp_size FROM heads"
        ):
            tree = self.seq.trees.get(controller)
            if tree is None or tree.frontier.size != size or tree.cp_size != cp_size:
                hashes = [frontier[i : i + 32] for i in range(0, len(frontier), 32)]
                self.seq.load(controller, Tree(Frontier(size, hashes), cp_size))

    def _write(self, plan: Plan, received_at: str) -> None:
        db = self._db
        plan.first_seq = self._last_seq() + 1
        if plan.rows:
            db.executemany(
                "INSERT INTO events (controller, idx, event_id, type, producer, occurred_at,"
                " received_at, leaf_hash, canon_hash, body) VALUES (?,?,?,?,?,?,?,?,?,?)",
                [
                    (
                        r.controller, r.index, r.event.event_id, r.event.type, r.event.producer,
                        r.event.occurred_at, received_at, r.leaf_hash,
                        r.event.canon_hash, r.event.body,
                    )
                    for r in plan.rows
                ],
            )
        if plan.nodes:
            db.executemany("INSERT INTO nodes VALUES (?,?,?,?)", plan.nodes)
        if plan.checkpoints:
            db.executemany(
                "INSERT INTO checkpoints VALUES (?,?,?,?,?)",
                [(c.controller, c.size, c.root, c.note, c.created_at) for c in plan.checkpoints],
            )
        db.executemany(
            "INSERT INTO heads VALUES (?,?,?,?) ON CONFLICT(controller) DO UPDATE SET"
            " size=excluded.size, frontier=excluded.frontier, cp_size=excluded.cp_size",
            [
                (c, t.frontier.size, b"".join(t.frontier.hashes()), t.cp_size)
                for c, t in plan.trees.items()
            ],
        )

    def _transaction(
        self, make_plan: Callable[[], Plan], expect_seq: int | None, received_at: str = ""
    ) -> Plan:
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                if expect_seq is not None and self._last_seq() != expect_seq:
                    raise StaleLog(f"log moved past seq {expect_seq}")
                self._sync_heads()
                plan = make_plan()
                self._write(plan, received_at)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self.seq.install(plan)
            return plan

    def append(
        self, batch: Sequence[Prepared], received_at: str, expect_seq: int | None = None
    ) -> list[StoredEvent]:
        if not batch:
            return []
        plan = self._transaction(lambda: self.seq.plan(batch), expect_seq, received_at)
        return [
            StoredEvent(
                plan.first_seq + i, r.controller, r.index, r.event.event_id, r.event.type,
                r.event.producer, r.event.occurred_at, received_at, r.leaf_hash,
                r.event.canon_hash, r.event.body,
            )
            for i, r in enumerate(plan.rows)
        ]

    def checkpoint_due(self, force: bool = False) -> list[StoredCheckpoint]:
        return self._transaction(lambda: self.seq.plan_due(force), None).checkpoints

    # -- reading ---------------------------------------------------------------------

    def _last_seq(self) -> int:
        return self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]

    def last_seq(self) -> int:
        with self._lock:
            return self._last_seq()

    def lookup(self, controller: str, event_ids: Sequence[str]) -> dict[str, StoredEvent]:
        out: dict[str, StoredEvent] = {}
        ids = list(event_ids)
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for row in self._db.execute(
                    f"SELECT {EVENT_COLS} FROM events WHERE controller = ?"
                    f" AND event_id IN ({marks})", [controller, *chunk]
                ):
                    out[row[3]] = _event(row)
        return out

    def events(
        self,
        controller: str | None = None,
        after_seq: int = 0,
        types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[StoredEvent]:
        where, args = ["seq > ?"], [after_seq]
        if controller is not None:
            where.append("controller = ?")
            args.append(controller)
        if types:
            where.append(f"type IN ({','.join('?' * len(types))})")
            args.extend(types)
        # Within one controller, seq order is leaf-index order (indexes are assigned in
        # commit order), and ORDER BY idx walks the (controller, idx) index instead of
        # sorting the controller's whole log for every page.
        order = "idx" if controller is not None else "seq"
        sql = f"SELECT {EVENT_COLS} FROM events WHERE {' AND '.join(where)} ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        # A separate connection, so a long read never blocks or is blocked by appends.
        reader = sqlite3.connect(self.path, check_same_thread=False)
        try:
            cur = reader.execute(sql, args)
            while rows := cur.fetchmany(2000):
                for row in rows:
                    yield _event(row)
        finally:
            reader.close()

    def event_at(self, controller: str, index: int) -> StoredEvent | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {EVENT_COLS} FROM events WHERE controller=? AND idx=?",
                (controller, index),
            ).fetchone()
        return _event(row) if row else None

    def controllers(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT controller FROM heads ORDER BY 1")]

    def size(self, controller: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT size FROM heads WHERE controller=?", (controller,)
            ).fetchone()
        return row[0] if row else 0

    def node_getter(self, controller: str) -> NodeGetter:
        db, lock = self._db, self._lock

        def get(level: int, index: int) -> bytes:
            with lock:
                if level == 0:
                    row = db.execute(
                        "SELECT leaf_hash FROM events WHERE controller=? AND idx=?",
                        (controller, index),
                    ).fetchone()
                else:
                    row = db.execute(
                        "SELECT hash FROM nodes WHERE controller=? AND level=? AND idx=?",
                        (controller, level, index),
                    ).fetchone()
            if row is None:
                raise KeyError(f"no node {controller} level {level} index {index}")
            return bytes(row[0])

        return get

    def checkpoints(self, controller: str) -> list[StoredCheckpoint]:
        with self._lock:
            rows = self._db.execute(
                "SELECT controller, size, root, note, created_at FROM checkpoints"
                " WHERE controller=? ORDER BY size",
                (controller,),
            ).fetchall()
        return [StoredCheckpoint(*r) for r in rows]

    def latest_checkpoint(self, controller: str) -> StoredCheckpoint | None:
        with self._lock:
            row = self._db.execute(
                "SELECT controller, size, root, note, created_at FROM checkpoints"
                " WHERE controller=? ORDER BY size DESC LIMIT 1",
                (controller,),
            ).fetchone()
        return StoredCheckpoint(*row) if row else None

    def add_cosignatures(self, controller: str, size: int, lines: Sequence[str]) -> None:
        """Keep witness cosignature lines of the checkpoint of ``size``; a newer line by
        the same witness key replaces the older one."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._put_cosignatures(controller, size, lines)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _put_cosignatures(self, controller: str, size: int, lines: Sequence[str]) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO cosignatures VALUES (?,?,?,?)",
            [(controller, size, cosignature_signer(x), x.rstrip("\n") + "\n") for x in lines])

    def cosignatures(self, controller: str, size: int) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT line FROM cosignatures WHERE controller=? AND size=? ORDER BY signer",
                (controller, size)).fetchall()
        return [r[0] for r in rows]

    def latest_cosigned(self, controller: str) -> StoredCheckpoint | None:
        with self._lock:
            row = self._db.execute(
                "SELECT c.controller, c.size, c.root, c.note, c.created_at FROM checkpoints c"
                " WHERE c.controller=? AND EXISTS (SELECT 1 FROM cosignatures s WHERE"
                " s.controller=c.controller AND s.size=c.size) ORDER BY c.size DESC LIMIT 1",
                (controller,)).fetchone()
        return StoredCheckpoint(*row) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
