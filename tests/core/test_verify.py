"""``auditledger verify DIR``: exit 0 on an untouched ledger; non-zero, naming the event,
when any event is altered, removed, reordered or inserted, or a checkpoint is forked."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from ledger.canonical import canonical_bytes
from ledger.cli import app
from ledger.merkle import leaf_hash
from ledger.sequencer import CheckpointSigner
from ledger.signing import load_private_key
from tests.conftest import CONTROLLER, World, make_world

runner = CliRunner()


@pytest.fixture
def filled(tmp_path: Path) -> World:
    world = make_world(tmp_path)
    for _ in range(4):
        res = world.ledger.submit([world.event() for _ in range(30)])
        assert all(r.status == "accepted" for r in res)
        world.ledger.flush()
    world.ledger.close()
    return world


def verify(world: World) -> tuple[int, dict]:
    result = runner.invoke(app, ["verify", str(world.data_dir), "--json"])
    return result.exit_code, orjson.loads(result.stdout)


def db(world: World) -> sqlite3.Connection:
    return sqlite3.connect(world.data_dir / "ledger.sqlite", isolation_level=None)


def row(world: World, index: int) -> tuple:
    return db(world).execute(
        "SELECT seq, event_id, body FROM events WHERE controller=? AND idx=?",
        (CONTROLLER, index)).fetchone()


def named(report: dict, problem: str | None = None) -> set[str]:
    return {p["event_id"] for p in report["problems"]
            if p["event_id"] and (problem is None or p["problem"] == problem)}


def test_untouched_ledger_verifies(filled: World) -> None:
    code, report = verify(filled)
    assert code == 0 and report["ok"] is True and report["problems"] == []
    assert report["controllers"][CONTROLLER]["size"] == 122
    assert report["controllers"][CONTROLLER]["root"]


def test_altered_event_is_named(filled: World) -> None:
    seq, event_id, body = row(filled, 50)
    env = orjson.loads(body)
    env["data"]["method"] = "paper_form"  # a plausible, canonical, but unsigned change
    new = canonical_bytes(env)
    db(filled).execute("UPDATE events SET body=?, leaf_hash=? WHERE seq=?",
                       (new, leaf_hash(new), seq))
    code, report = verify(filled)
    assert code != 0
    assert event_id in named(report, "bad_signature")
    assert any(p["problem"] == "root_mismatch" for p in report["problems"])


def test_removed_event_is_found(filled: World) -> None:
    seq, _, _ = row(filled, 70)
    db(filled).execute("DELETE FROM events WHERE seq=?", (seq,))
    code, report = verify(filled)
    assert code != 0
    assert any(p["problem"] == "missing_event" and p["index"] == 70 for p in report["problems"])


def test_removed_event_with_renumbering_is_found(filled: World) -> None:
    seq, _, _ = row(filled, 70)
    conn = db(filled)
    conn.execute("DELETE FROM events WHERE seq=?", (seq,))
    conn.execute("UPDATE events SET idx = idx - 1000000 WHERE controller=? AND idx > 70",
                 (CONTROLLER,))
    conn.execute("UPDATE events SET idx = idx + 1000000 - 1 WHERE controller=? AND idx < 0",
                 (CONTROLLER,))
    code, report = verify(filled)
    assert code != 0
    shifted = row(filled, 70)[1]  # the event now claiming index 70 is named
    assert shifted in named(report)


def test_reordered_events_are_named(filled: World) -> None:
    a, b = row(filled, 40), row(filled, 90)
    conn = db(filled)
    conn.execute("UPDATE events SET idx=-1 WHERE seq=?", (a[0],))
    conn.execute("UPDATE events SET idx=40 WHERE seq=?", (b[0],))
    conn.execute("UPDATE events SET idx=90 WHERE seq=?", (a[0],))
    code, report = verify(filled)
    assert code != 0
    assert {a[1], b[1]} <= named(report, "event_not_as_logged")


def test_inserted_event_is_named(filled: World) -> None:
    # A replay of a genuine, validly signed event, slipped in the middle.
    _, _, body = row(filled, 10)
    conn = db(filled)
    conn.execute("UPDATE events SET idx = idx + 1000000 WHERE controller=? AND idx >= 60",
                 (CONTROLLER,))
    conn.execute("UPDATE events SET idx = idx - 1000000 + 1 WHERE controller=? AND idx >= 1000000",
                 (CONTROLLER,))
    env = orjson.loads(body)
    conn.execute(
        "INSERT INTO events (controller, idx, event_id, type, producer, occurred_at, "
        "received_at, leaf_hash, canon_hash, body) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (CONTROLLER, 60, env["event_id"] + "-x", env["type"], env["producer"],
         env["occurred_at"], "2026-11-20T12:00:00.000Z", leaf_hash(body), b"", body))
    code, report = verify(filled)
    assert code != 0
    problems = {p["problem"] for p in report["problems"]}
    assert "duplicate_event_id" in problems or "event_id_mismatch" in problems
    assert any(p["index"] == 60 for p in report["problems"] if p["event_id"])


def test_forged_event_inserted_is_named(filled: World, tmp_path: Path) -> None:
    from ledger.signing import generate_key

    forged = filled.event(key=generate_key())
    body = canonical_bytes(forged)
    size = 122
    db(filled).execute(
        "INSERT INTO events (controller, idx, event_id, type, producer, occurred_at, "
        "received_at, leaf_hash, canon_hash, body) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (CONTROLLER, size, forged["event_id"], forged["type"], "crm", forged["occurred_at"],
         "2026-11-20T12:00:00.000Z", leaf_hash(body), b"", body))
    code, report = verify(filled)
    assert code != 0
    assert forged["event_id"] in named(report, "bad_signature")


def test_forked_checkpoint_is_found(filled: World) -> None:
    # The log key signs a different history at an existing size: a fork (split view).
    signer = CheckpointSigner(load_private_key(filled.data_dir / "keys" / "log.pem"))
    conn = db(filled)
    size = conn.execute("SELECT size FROM checkpoints WHERE controller=? ORDER BY size"
                        " LIMIT 1 OFFSET 1", (CONTROLLER,)).fetchone()[0]
    fake_root = bytes(32)
    conn.execute("UPDATE checkpoints SET root=?, note=? WHERE controller=? AND size=?",
                 (fake_root, signer.sign(CONTROLLER, size, fake_root), CONTROLLER, size))
    code, report = verify(filled)
    assert code != 0
    problems = {p["problem"] for p in report["problems"]}
    assert {"root_mismatch", "checkpoint_fork"} <= problems


def test_checkpoint_signed_by_another_key_is_refused(filled: World) -> None:
    from ledger.signing import generate_key

    other = CheckpointSigner(generate_key())
    conn = db(filled)
    size, root = conn.execute("SELECT size, root FROM checkpoints WHERE controller=? "
                              "ORDER BY size DESC LIMIT 1", (CONTROLLER,)).fetchone()
    conn.execute("UPDATE checkpoints SET note=? WHERE controller=? AND size=?",
                 (other.sign(CONTROLLER, size, root), CONTROLLER, size))
    code, report = verify(filled)
    assert code != 0
    assert any(p["problem"] == "bad_checkpoint" for p in report["problems"])


def test_pinned_log_key_wins_over_the_one_in_the_directory(filled: World) -> None:
    from ledger.signing import generate_key

    other = CheckpointSigner(generate_key())
    result = runner.invoke(app, ["verify", str(filled.data_dir), "--json",
                                 "--log-key", other.verifier_key])
    assert result.exit_code != 0
    assert "bad_checkpoint" in result.stdout
