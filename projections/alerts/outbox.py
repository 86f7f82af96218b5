"""The alert outbox: one SQLite file (``DIR/alerts.sqlite``) that survives ``kill -9``.

Three tables:

- ``alerts`` — every planned alert, keyed by its deterministic id. ``state`` is
  ``pending`` (planned, not yet due or not yet emitted), ``emitted`` (due; it got the next
  ``seq``, the outbox's monotonic sequence that SSE clients resume from) or ``cancelled``
  (its case was resolved before it was due). ``INSERT … ON CONFLICT DO NOTHING`` makes
  planning idempotent: re-planning after a restart finds the rows already there.
- ``deliveries`` — one row per (alert, sink) written in the SAME transaction that emits
  the alert, so an emitted alert always has its deliveries, and a crash before that commit
  leaves it ``pending`` to be emitted again (same id, same seq never reused).
  ``pending`` → ``delivered`` | ``dead`` (attempts exhausted); ``cancelled`` when a
  webhook is deleted.
- ``webhooks`` — per-controller receivers (``kind``: a signed ``webhook``, ``email``,
  ``slack``, ``teams``) with their secrets: the HMAC key, the SMTP password, the chat
  incoming-webhook URL (a bearer credential). ``secret`` is read only by the deliverer;
  every listing goes through ``sinks.config.public_view``, which leaves it out. The
  file is created ``0600`` (SQLite gives its ``-wal``/``-shm`` files the same mode).

An alert that a case had already passed when it was first seen, with a later threshold
also passed, is stored ``superseded`` (``thresholds.where_it_stands``): never emitted,
never planned again (its id is kept), listed with ``?state=superseded``.

Why SQLite and not the read-model store: the read-model store is rebuilt from the log
(``projections rebuild`` empties it), while what was *sent* is a fact about the outside
world that a rebuild must not forget — that would re-send every alert.

Times are RFC 3339 UTC with milliseconds (``format_rfc3339``): they sort as text.
One connection per ``Outbox``, guarded by a lock; writes are ``BEGIN IMMEDIATE``
transactions, so several processes (the server, the CLI) may open one file.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from ledger.clock import format_rfc3339
from projections.alerts.sinks.config import SinkSpec, public_view
from projections.alerts.thresholds import SERIES_KINDS, Planned, series_of, where_it_stands

DDL = [
    "CREATE TABLE IF NOT EXISTS alerts (id TEXT PRIMARY KEY, controller TEXT NOT NULL,"
    " kind TEXT NOT NULL, case_id TEXT NOT NULL, threshold TEXT NOT NULL,"
    " due_at TEXT NOT NULL, state TEXT NOT NULL, seq INTEGER UNIQUE, emitted_at TEXT,"
    " planned_at TEXT NOT NULL, payload TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS alerts_state_due ON alerts (state, due_at)",
    "CREATE INDEX IF NOT EXISTS alerts_controller ON alerts (controller, state)",
    "CREATE TABLE IF NOT EXISTS deliveries (alert_id TEXT NOT NULL, sink TEXT NOT NULL,"
    " state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT NOT NULL,"
    " last_error TEXT, delivered_at TEXT, PRIMARY KEY (alert_id, sink))",
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_at)",
    "CREATE TABLE IF NOT EXISTS webhooks (id TEXT PRIMARY KEY, controller TEXT NOT NULL,"
    " url TEXT NOT NULL, secret TEXT NOT NULL, created_at TEXT NOT NULL, deleted_at TEXT)",
]
#: Columns added after the first release: (table, column, declaration).
MIGRATIONS = [
    ("alerts", "series", "TEXT"),
    ("webhooks", "kind", "TEXT NOT NULL DEFAULT 'webhook'"),
    ("webhooks", "config", "TEXT NOT NULL DEFAULT '{}'"),
]
INDEXES = ["CREATE INDEX IF NOT EXISTS alerts_series ON alerts (series)"]

ALERT_COLS = ("id", "controller", "kind", "case_id", "threshold", "due_at", "state", "seq",
              "emitted_at", "planned_at", "payload")
STATES = ("pending", "emitted", "cancelled", "superseded")
DELIVERY_STATES = ("pending", "delivered", "dead", "cancelled")


def _ts(at: datetime) -> str:
    return format_rfc3339(at)


class Outbox:
    """The persistent alert queue. Every method is one transaction."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if not os.path.exists(self.path):  # it holds receivers' secrets: owner only
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an emitted alert must survive power loss
        with self._tx() as c:
            for stmt in DDL:
                c.execute(stmt)
            for table, col, decl in MIGRATIONS:
                have = {r[1] for r in c.execute(f"PRAGMA table_info({table})")}
                if col not in have:
                    c.execute(f"ALTER TABLE {table} ADD COLUMN {col} {decl}")
            for stmt in INDEXES:
                c.execute(stmt)
            marks = ",".join("?" * len(SERIES_KINDS))
            old = c.execute(f"SELECT id, kind, case_id, payload FROM alerts WHERE series IS"
                            f" NULL AND kind IN ({marks})", SERIES_KINDS).fetchall()
            c.executemany("UPDATE alerts SET series=? WHERE id=?",
                          [(series_of(k, cid, orjson.loads(pl)), i) for i, k, cid, pl in old])

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- planning ------------------------------------------------------------------------

    def plan(self, controller: str, planned: Iterable[Planned], now: datetime,
             scope: Iterable[str] | None = None,
             held: Iterable[str] = ()) -> tuple[int, int]:
        """Make the controller's pending alerts equal ``planned`` plus ``held``: insert new
        ones (an id already known keeps its row — and its first ``due_at`` for findings),
        revive cancelled ones that are planned again, cancel pending ones no longer
        planned. ``held`` are ids also planned that the caller knows this outbox holds,
        not cancelled (the scheduler's last plan): kept, not written again.
        ``scope`` limits cancelling to those kinds. Returns (inserted, cancelled).

        A series of thresholds (one deadline of one case) with no row yet is first seen
        now: of its thresholds already passed only the latest is pending, the earlier
        ones are stored ``superseded`` (``where_it_stands``), in this same transaction."""
        planned = list(planned)
        ids = {p.id for p in planned}.union(held)
        kinds = tuple(scope) if scope is not None else ("breach", "rights_request", "finding")
        at = _ts(now)
        wanted = sorted({p.series for p in planned if p.series is not None})
        with self._tx() as c:
            skipped = where_it_stands(planned, now, self._seen(c, wanted))
            before = c.total_changes
            c.executemany(
                "INSERT INTO alerts (id, controller, kind, case_id, threshold, due_at, state,"
                " planned_at, payload, series) VALUES (?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT (id) DO UPDATE SET state='pending' WHERE state='cancelled'",
                [(p.id, p.controller, p.kind, p.case_id, p.threshold, _ts(p.due_at),
                  "superseded" if p.id in skipped else "pending", at,
                  orjson.dumps(p.payload, option=orjson.OPT_SORT_KEYS).decode(), p.series)
                 for p in planned])
            inserted = c.total_changes - before
            marks = ",".join("?" * len(kinds))
            rows = c.execute(f"SELECT id FROM alerts WHERE controller=? AND state='pending'"
                             f" AND kind IN ({marks})", (controller, *kinds)).fetchall()
            gone = [(r[0],) for r in rows if r[0] not in ids]
            c.executemany("UPDATE alerts SET state='cancelled' WHERE id=?", gone)
        return inserted, len(gone)

    @staticmethod
    def _seen(c: sqlite3.Connection, series: Sequence[str]) -> set[str]:
        seen: set[str] = set()
        for i in range(0, len(series), 500):
            chunk = list(series[i:i + 500])
            seen.update(r[0] for r in c.execute(
                f"SELECT DISTINCT series FROM alerts WHERE series IN"
                f" ({','.join('?' * len(chunk))})", chunk))
        return seen

    def seen_series(self, series: Iterable[str]) -> set[str]:
        """Which of these series already have alerts (``where_it_stands``' ``seen``)."""
        with self._lock:
            return self._seen(self._db, sorted(set(series)))

    # -- emission ------------------------------------------------------------------------

    def next_due(self) -> str | None:
        rows = self._query("SELECT MIN(due_at) FROM alerts WHERE state='pending'")
        return rows[0][0] if rows else None

    def emit_due(self, now: datetime, global_sinks: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Emit every pending alert due at ``now``: give each the next ``seq`` and create
        its deliveries (the controller's live receivers, ``<kind>:<id>``, and
        ``global_sinks``), atomically.
        Returns the emitted alerts in ``seq`` order."""
        at = _ts(now)
        with self._tx() as c:
            rows = c.execute(
                "SELECT id, controller FROM alerts WHERE state='pending' AND due_at<=?"
                " ORDER BY due_at, id", (at,)).fetchall()
            if not rows:
                return []
            seq = c.execute("SELECT COALESCE(MAX(seq), 0) FROM alerts").fetchone()[0]
            hooks: dict[str, list[str]] = {}
            states: list[tuple[int, str, str]] = []
            deliveries: list[tuple[str, str, str]] = []
            for aid, ctl in rows:
                seq += 1
                states.append((seq, at, aid))
                if ctl not in hooks:
                    hooks[ctl] = [f"{r[1]}:{r[0]}" for r in c.execute(
                        "SELECT id, kind FROM webhooks WHERE controller=? AND deleted_at IS"
                        " NULL ORDER BY id", (ctl,))]
                deliveries += [(aid, s, at) for s in (*hooks[ctl], *global_sinks)]
            # Two statements for the whole emission (a burst of findings is thousands of
            # alerts), in the same transaction as before.
            c.executemany("UPDATE alerts SET state='emitted', seq=?, emitted_at=? WHERE id=?",
                          states)
            c.executemany(
                "INSERT OR IGNORE INTO deliveries (alert_id, sink, state, next_attempt_at)"
                " VALUES (?,?,'pending',?)", deliveries)
            ids = [r[0] for r in rows]
        return self.get_many(ids)

    # -- reading -------------------------------------------------------------------------

    @staticmethod
    def _doc(row: Sequence[Any]) -> dict[str, Any]:
        """The alert as sent and shown: stable once emitted (webhook retries sign the
        same body)."""
        r = dict(zip(ALERT_COLS, row, strict=True))
        payload = orjson.loads(r.pop("payload"))
        return {"id": r["id"], "seq": r["seq"], "controller": r["controller"],
                "kind": r["kind"], "case": r["case_id"], "threshold": r["threshold"],
                "due_at": r["due_at"], "emitted_at": r["emitted_at"], "state": r["state"],
                **payload}

    def get(self, alert_id: str) -> dict[str, Any] | None:
        docs = self.get_many([alert_id])
        return docs[0] if docs else None

    def get_many(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        out = []
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            out += self._query(f"SELECT {', '.join(ALERT_COLS)} FROM alerts WHERE id IN"
                               f" ({','.join('?' * len(chunk))})", chunk)
        return sorted((self._doc(r) for r in out), key=lambda d: (d["seq"] or 0, d["due_at"]))

    def emitted_after(self, seq: int, controllers: Iterable[str] | None = None,
                      limit: int = 500) -> list[dict[str, Any]]:
        """Emitted alerts with ``seq`` > ``seq`` (the SSE stream), oldest first."""
        where, args = ["state='emitted'", "seq>?"], [seq]
        if controllers is not None:
            cs = sorted(controllers)
            where.append(f"controller IN ({','.join('?' * len(cs))})")
            args += cs
        rows = self._query(f"SELECT {', '.join(ALERT_COLS)} FROM alerts WHERE"
                           f" {' AND '.join(where)} ORDER BY seq LIMIT {int(limit)}", args)
        return [self._doc(r) for r in rows]

    def last_seq(self) -> int:
        return self._query("SELECT COALESCE(MAX(seq), 0) FROM alerts")[0][0]

    def alerts(self, state: str | None = None, controllers: Iterable[str] | None = None,
               limit: int = 1000, after_seq: int | None = None) -> list[dict[str, Any]]:
        """Alerts for the API and the CLI. ``state``: pending (soonest first), emitted or
        cancelled, or ``dead`` / ``undelivered`` (emitted with a dead / a pending
        delivery). Emitted ones in ``seq`` order; each carries its ``deliveries``."""
        where: list[str] = []
        args: list[Any] = []
        if state in STATES:
            where.append("a.state=?")
            args.append(state)
        elif state in ("dead", "undelivered"):
            want = "dead" if state == "dead" else "pending"
            where.append("EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id=a.id"
                         " AND d.state=?)")
            args.append(want)
        elif state is not None:
            raise ValueError(f"unknown alert state {state!r}")
        if controllers is not None:
            cs = sorted(controllers)
            where.append(f"a.controller IN ({','.join('?' * len(cs))})")
            args += cs
        if after_seq is not None:
            where.append("a.seq>?")
            args.append(after_seq)
        order = "a.due_at, a.id" if state == "pending" else "a.seq IS NULL, a.seq, a.due_at"
        cols = ", ".join(f"a.{c}" for c in ALERT_COLS)
        sql = f"SELECT {cols} FROM alerts a"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._query(f"{sql} ORDER BY {order} LIMIT {int(limit)}", args)
        docs = [self._doc(r) for r in rows]
        by_id = {d["id"]: d for d in docs}
        for d in docs:
            d["deliveries"] = []
        ids = list(by_id)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for aid, sink, st, attempts, nxt, err, done in self._query(
                    "SELECT alert_id, sink, state, attempts, next_attempt_at, last_error,"
                    f" delivered_at FROM deliveries WHERE alert_id IN ({marks})"
                    " ORDER BY sink", chunk):
                by_id[aid]["deliveries"].append({
                    "sink": sink, "state": st, "attempts": attempts,
                    "next_attempt_at": nxt if st == "pending" else None,
                    "last_error": err, "delivered_at": done})
        return docs

    def queue_length(self) -> int:
        """Alerts waiting for delivery: emitted alerts with a delivery still pending."""
        return self._query("SELECT COUNT(DISTINCT alert_id) FROM deliveries"
                           " WHERE state='pending'")[0][0]

    def counts(self) -> dict[str, int]:
        rows = self._query("SELECT state, COUNT(*) FROM alerts GROUP BY state")
        out = {s: 0 for s in STATES}
        out.update(dict(rows))
        for st, n in self._query("SELECT state, COUNT(*) FROM deliveries GROUP BY state"):
            out[f"deliveries_{st}"] = n
        return out

    # -- deliveries ----------------------------------------------------------------------

    def due_deliveries(self, now: datetime, limit: int = 100,
                       exclude: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str, int]]:
        """``(alert_id, sink, attempts)`` of pending deliveries due at ``now``, oldest
        first, then in emission (``seq``) order."""
        skip = set(exclude)
        rows = self._query(
            "SELECT d.alert_id, d.sink, d.attempts FROM deliveries d JOIN alerts a"
            " ON a.id=d.alert_id WHERE d.state='pending' AND d.next_attempt_at<=?"
            " ORDER BY d.next_attempt_at, a.seq, d.sink LIMIT ?",
            (_ts(now), limit + len(skip)))
        return [r for r in rows if (r[0], r[1]) not in skip][:limit]

    def next_delivery_at(self) -> str | None:
        rows = self._query("SELECT MIN(next_attempt_at) FROM deliveries WHERE state='pending'")
        return rows[0][0] if rows else None

    def delivered(self, alert_id: str, sink: str, now: datetime) -> None:
        with self._tx() as c:
            c.execute("UPDATE deliveries SET state='delivered', attempts=attempts+1,"
                      " delivered_at=?, last_error=NULL WHERE alert_id=? AND sink=?"
                      " AND state='pending'", (_ts(now), alert_id, sink))

    def failed(self, alert_id: str, sink: str, error: str, retry_at: datetime | None) -> None:
        """One failed attempt: retry at ``retry_at``, or dead-letter when it is None."""
        with self._tx() as c:
            if retry_at is None:
                c.execute("UPDATE deliveries SET state='dead', attempts=attempts+1,"
                          " last_error=? WHERE alert_id=? AND sink=? AND state='pending'",
                          (error[:500], alert_id, sink))
            else:
                c.execute("UPDATE deliveries SET attempts=attempts+1, last_error=?,"
                          " next_attempt_at=? WHERE alert_id=? AND sink=? AND state='pending'",
                          (error[:500], _ts(retry_at), alert_id, sink))

    def cancel_delivery(self, alert_id: str, sink: str, reason: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE deliveries SET state='cancelled', last_error=? WHERE alert_id=?"
                      " AND sink=? AND state='pending'", (reason, alert_id, sink))

    def redeliver(self, alert_id: str, now: datetime) -> int:
        """Put an alert's dead deliveries back in the queue (an operator fixed the
        receiver). Returns how many."""
        with self._tx() as c:
            cur = c.execute("UPDATE deliveries SET state='pending', attempts=0,"
                            " next_attempt_at=? WHERE alert_id=? AND state='dead'",
                            (_ts(now), alert_id))
            return cur.rowcount

    # -- receivers (webhooks, e-mail, chat) ---------------------------------------------

    def add_webhook(self, controller: str, url: str, now: datetime) -> dict[str, Any]:
        """Register a signed webhook; the returned dict holds the secret — the only time
        it is shown."""
        return self.add_sink(controller, SinkSpec("webhook", url, "", {}), now)

    def add_sink(self, controller: str, spec: SinkSpec, now: datetime) -> dict[str, Any]:
        """Register a receiver of any kind. Returns its public view; for a ``webhook``
        also the generated signing ``secret`` (shown once). The other kinds' secrets
        (SMTP password, chat URL) were given by the caller and are never returned."""
        wid = str(uuid.uuid4())
        secret = spec.secret
        if spec.kind == "webhook":
            secret = "whsec_" + secrets.token_urlsafe(32)
        config = orjson.dumps(spec.config, option=orjson.OPT_SORT_KEYS).decode()
        with self._tx() as c:
            c.execute("INSERT INTO webhooks (id, controller, url, secret, created_at, kind,"
                      " config) VALUES (?,?,?,?,?,?,?)",
                      (wid, controller, spec.url, secret, _ts(now), spec.kind, config))
        out = public_view({"id": wid, "controller": controller, "kind": spec.kind,
                           "url": spec.url, "config": spec.config, "created_at": _ts(now)})
        if spec.kind == "webhook":
            out["secret"] = secret
        return out

    def webhooks(self, controller: str, kind: str | None = None) -> list[dict[str, Any]]:
        """The controller's live receivers, public views only (no secret)."""
        rows = self._query("SELECT id, controller, kind, url, config, created_at FROM webhooks"
                           " WHERE controller=? AND deleted_at IS NULL"
                           " AND (? IS NULL OR kind=?) ORDER BY created_at, rowid",
                           (controller, kind, kind))
        return [public_view({"id": r[0], "controller": r[1], "kind": r[2], "url": r[3],
                             "config": orjson.loads(r[4]), "created_at": r[5]})
                for r in rows]

    def webhook(self, webhook_id: str) -> dict[str, Any] | None:
        """With the secret (for sending); None when unknown or deleted."""
        rows = self._query("SELECT id, controller, url, secret, kind, config FROM webhooks"
                           " WHERE id=? AND deleted_at IS NULL", (webhook_id,))
        if not rows:
            return None
        r = rows[0]
        return {"id": r[0], "controller": r[1], "url": r[2], "secret": r[3], "kind": r[4],
                "config": orjson.loads(r[5])}

    def delete_webhook(self, controller: str, webhook_id: str, now: datetime) -> bool:
        """Stop delivering to it; its pending deliveries are cancelled."""
        with self._tx() as c:
            row = c.execute("SELECT kind FROM webhooks WHERE id=? AND controller=? AND"
                            " deleted_at IS NULL", (webhook_id, controller)).fetchone()
            if row is None:
                return False
            c.execute("UPDATE webhooks SET deleted_at=? WHERE id=?", (_ts(now), webhook_id))
            c.execute("UPDATE deliveries SET state='cancelled', last_error='receiver deleted'"
                      " WHERE sink=? AND state='pending'", (f"{row[0]}:{webhook_id}",))
        return True

    def close(self) -> None:
        with self._lock:
            self._db.close()
