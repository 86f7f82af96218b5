"""An outbox written before receivers had kinds and alerts had series opens as before:
its webhooks still deliver as ``webhook:<id>``, its alerts get their series back from
their payloads, so a case it already alerted is not taken for first seen."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import orjson

from projections.alerts.outbox import Outbox
from projections.alerts.thresholds import plan_breach
from tests.alerts.test_thresholds import C, breach
from tests.alerts.test_where_it_stands import AWARE

OLD_DDL = [
    "CREATE TABLE alerts (id TEXT PRIMARY KEY, controller TEXT NOT NULL, kind TEXT NOT NULL,"
    " case_id TEXT NOT NULL, threshold TEXT NOT NULL, due_at TEXT NOT NULL,"
    " state TEXT NOT NULL, seq INTEGER UNIQUE, emitted_at TEXT, planned_at TEXT NOT NULL,"
    " payload TEXT NOT NULL)",
    "CREATE TABLE deliveries (alert_id TEXT NOT NULL, sink TEXT NOT NULL, state TEXT NOT"
    " NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at TEXT NOT NULL,"
    " last_error TEXT, delivered_at TEXT, PRIMARY KEY (alert_id, sink))",
    "CREATE TABLE webhooks (id TEXT PRIMARY KEY, controller TEXT NOT NULL, url TEXT NOT NULL,"
    " secret TEXT NOT NULL, created_at TEXT NOT NULL, deleted_at TEXT)",
]


def test_old_outbox_is_migrated(tmp_path: Path):
    path = tmp_path / "alerts.sqlite"
    db = sqlite3.connect(path)
    for stmt in OLD_DDL:
        db.execute(stmt)
    plans = plan_breach(C, breach())
    first = plans[0]  # 48h, emitted by the old version
    db.execute("INSERT INTO alerts VALUES (?,?,?,?,?,?,'emitted',1,?,?,?)",
               (first.id, C, "breach", "b1", "48h", "2026-12-26T15:00:00.000Z",
                "2026-12-26T15:00:00.000Z", "2026-12-24T15:00:00.000Z",
                orjson.dumps(first.payload).decode()))
    db.execute("INSERT INTO webhooks VALUES ('w1', ?, 'http://127.0.0.1:9/x', 'whsec_k',"
               " '2026-12-01T00:00:00.000Z', NULL)", (C,))
    db.commit()
    db.close()
    ob = Outbox(path)
    assert ob.webhooks(C) == [{"id": "w1", "controller": C, "kind": "webhook",
                               "url": "http://127.0.0.1:9/x",
                               "created_at": "2026-12-01T00:00:00.000Z"}]
    assert ob.webhook("w1")["secret"] == "whsec_k"
    assert ob.seen_series([first.series]) == {first.series}
    # back at aware + 80 h: the case was seen, so 60h, 71h and overdue are all owed
    ob.plan(C, plans, AWARE + timedelta(hours=80))
    assert ob.alerts("superseded") == []
    emitted = ob.emit_due(AWARE + timedelta(hours=80))
    assert [a["threshold"] for a in emitted] == ["60h", "71h", "overdue"]
    assert {d["sink"] for a in ob.alerts("emitted") for d in a["deliveries"]} == {
        "webhook:w1"}
    ob.close()
    ob = Outbox(path)  # opening again changes nothing
    assert ob.webhooks(C)[0]["id"] == "w1" and len(ob.alerts("emitted")) == 4
    ob.close()
