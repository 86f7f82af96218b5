"""Idempotency is per controller (issue #14, item 4), and an old log with global
event ids is migrated on open."""

from __future__ import annotations

import sqlite3

from ledger.log.sqlite import SQLiteLog
from ledger.service import Ledger
from ledger.signing import generate_key, public_key_text
from ledger.verify import LogSource, verify_source
from tests.conftest import CONTROLLER, OTHER, World


def with_other(world: World):  # type: ignore[no-untyped-def]
    world.ledger.register_controller(OTHER, {"name": "Andet Firma ApS", "country": "DK",
                                             "timezone": "Europe/Copenhagen"})
    key = generate_key()
    assert world.ledger.register_producer(OTHER, "hr", public_key_text(key), ["*"]).status \
        == "accepted"
    return key


def test_the_same_event_id_in_two_controllers_is_two_events(world: World) -> None:
    key = with_other(world)
    mine = world.event()
    theirs = world.event(controller=OTHER, producer="hr", key=key, event_id=mine["event_id"])
    first = world.ledger.submit([mine])[0]
    second = world.ledger.submit([theirs])[0]
    assert first.status == second.status == "accepted"
    assert (first.controller, second.controller) == (CONTROLLER, OTHER)
    # Each answers duplicate for itself, conflict for other bytes, within its own tenant.
    again = world.ledger.submit([theirs, mine])
    assert [r.status for r in again] == ["duplicate", "duplicate"]
    assert again[0].index == second.index and again[1].index == first.index
    clash = world.event(controller=OTHER, producer="hr", key=key, event_id=mine["event_id"],
                        data={"purposes": ["other"], "method": "m", "notice_version": "v"})
    assert world.ledger.submit([clash])[0].code == "event_id_conflict"
    log = world.ledger.log
    assert log.lookup(CONTROLLER, [mine["event_id"]])[mine["event_id"]].index == first.index
    assert log.lookup(OTHER, [mine["event_id"]])[mine["event_id"]].index == second.index
    world.ledger.flush()
    assert verify_source(LogSource(log), [world.ledger.verifier_key]).ok


def test_in_one_batch_too(world: World) -> None:
    key = with_other(world)
    mine = world.event()
    theirs = world.event(controller=OTHER, producer="hr", key=key, event_id=mine["event_id"])
    assert [r.status for r in world.ledger.submit([mine, theirs])] == ["accepted"] * 2


def test_an_old_log_is_migrated_on_open(world: World) -> None:
    """A log written with ``event_id UNIQUE`` across the ledger opens with the per
    controller constraint, every row and checkpoint unchanged, and still verifies."""
    world.ledger.submit([world.event() for _ in range(5)])
    world.ledger.close()
    path = world.ledger.cfg.log_db
    db = sqlite3.connect(path, isolation_level=None)
    rows = db.execute("SELECT * FROM events ORDER BY seq").fetchall()
    old = db.execute("SELECT sql FROM sqlite_master WHERE name='events'").fetchone()[0]
    db.execute("BEGIN")
    db.execute("ALTER TABLE events RENAME TO events_new_tmp")
    db.execute(old.replace("events_new_tmp", "events").replace(
        "event_id    TEXT    NOT NULL,", "event_id    TEXT    NOT NULL UNIQUE,").replace(
        ",\n    UNIQUE (controller, event_id)", ""))
    db.execute("INSERT INTO events SELECT * FROM events_new_tmp")
    db.execute("DROP TABLE events_new_tmp")
    db.execute("COMMIT")
    legacy = db.execute("SELECT sql FROM sqlite_master WHERE name='events'").fetchone()[0]
    assert "NOT NULL UNIQUE" in legacy and "(controller, event_id)" not in legacy
    db.close()

    world.ledger = Ledger.open(world.data_dir, clock=world.clock, verifier_workers=0)
    assert isinstance(world.ledger.log, SQLiteLog)
    db = sqlite3.connect(path)
    migrated = db.execute("SELECT sql FROM sqlite_master WHERE name='events'").fetchone()[0]
    assert "UNIQUE (controller, event_id)" in migrated
    assert db.execute("SELECT * FROM events ORDER BY seq").fetchall() == rows
    db.close()
    key = with_other(world)
    reused = world.event(controller=OTHER, producer="hr", key=key,
                         event_id=rows[-1][3])  # an id CONTROLLER already uses
    assert world.ledger.submit([reused])[0].status == "accepted"
    world.ledger.flush()
    assert verify_source(LogSource(world.ledger.log), [world.ledger.verifier_key]).ok
