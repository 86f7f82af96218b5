"""``auditledger emit`` keeps what the caller gave: a line that has ``sig`` is sent exactly
as it is (a wrong signature comes back as the ledger's ``bad_signature``), a line without
``event_id`` or ``sig`` is filled in and signed. Both locally (``--data``) and over HTTP
against a real ``auditledger serve``."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.canonical import canonical_bytes
from ledger.envelope import complete, pseudonym
from ledger.signing import load_private_key, signing_input, verify_signature
from tests.conftest import CLI, CONTROLLER
from tests.serving import Serve, make_data


def _partial(i: int, **extra: Any) -> dict[str, Any]:
    return {"type": "consent.given", "controller": CONTROLLER,
            "subject": pseudonym(b"k" * 32, f"given{i}@example.org"),
            "data": {"purposes": ["newsletter"], "method": "web_form",
                     "notice_version": "v1"}, **extra}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("emit-given")
    w = make_data(tmp)
    serve = Serve(w["data"]).start()
    w["url"], w["tmp"] = serve.url, tmp
    yield w
    serve.stop()


def _emit(world: dict[str, Any], mode: str, lines: list[dict[str, Any]], name: str,
          *flags: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    path: Path = world["tmp"] / f"{name}-{mode}.jsonl"
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    where = (["--url", world["url"], "--api-key", world["producer"]] if mode == "http"
             else ["--data", str(world["data"])])
    proc = subprocess.run([*CLI, "emit", *where, *flags, str(path)],
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc, [orjson.loads(x) for x in proc.stdout.splitlines()]


def _stored(world: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The envelope as the ledger stored it: its log, read-only (serve keeps running)."""
    import sqlite3

    from ledger.config import Config

    db = sqlite3.connect(f"file:{Config.load(world['data']).log_db}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT body FROM events WHERE event_id=?", (event_id,)).fetchone()
    finally:
        db.close()
    assert row is not None, f"{event_id} not in the log"
    return orjson.loads(row[0])


MODES = ["local", "http"]


@pytest.mark.parametrize("mode", MODES)
def test_a_signed_envelope_is_sent_exactly_as_given(world: dict[str, Any], mode: str) -> None:
    key = load_private_key(world["key"])
    # an offset and milliseconds emit would not have written itself
    when = (datetime.now(UTC) - timedelta(minutes=1)).astimezone(timezone(timedelta(hours=1)))
    occurred = when.isoformat(timespec="milliseconds")
    given = complete(_partial(1, occurred_at=occurred,
                              event_id=f"0192f7a4-1111-7000-8000-00000000000{len(mode)}"),
                     key, "crm")
    proc, results = _emit(world, mode, [given], "signed")
    assert proc.returncode == 0, proc.stderr
    assert results[0]["event_id"] == given["event_id"]
    assert results[0]["status"] == "accepted", results
    stored = _stored(world, given["event_id"])
    signed_part = {k: stored[k] for k in given}
    assert canonical_bytes(signed_part) == canonical_bytes(given), "emit changed the envelope"
    assert stored["sig"] == given["sig"]
    assert stored["occurred_at"] == occurred and occurred.endswith("+01:00")


@pytest.mark.parametrize("mode", MODES)
def test_a_wrong_signature_is_the_ledgers_bad_signature(world: dict[str, Any],
                                                        mode: str) -> None:
    key = load_private_key(world["key"])
    env = complete(_partial(2), key, "crm")
    env["data"] = {**env["data"], "notice_version": "v2"}  # changed after signing
    proc, results = _emit(world, mode, [env], "wrong-sig", "--key", str(world["key"]),
                          "--producer", "crm")
    assert proc.returncode == 1
    assert results == [{"event_id": env["event_id"], "status": "rejected",
                        "code": "bad_signature", "detail": results[0]["detail"]}], results


@pytest.mark.parametrize("mode", MODES)
def test_a_signed_envelope_needs_no_key(world: dict[str, Any], mode: str) -> None:
    env = complete(_partial(3), load_private_key(world["key"]), "crm")
    proc, results = _emit(world, mode, [env], "no-key")
    assert proc.returncode == 0 and results[0]["status"] == "accepted", (proc.stderr, results)


@pytest.mark.parametrize("mode", MODES)
def test_an_unsigned_line_is_filled_in_and_signed(world: dict[str, Any], mode: str) -> None:
    mine = "0192f7a4-0000-7000-8000-00000000000" + ("1" if mode == "local" else "2")
    lines = [_partial(4), _partial(5, event_id=mine)]
    proc, results = _emit(world, mode, lines, "unsigned", "--key", str(world["key"]),
                          "--producer", "crm")
    assert proc.returncode == 0, proc.stderr
    assert [r["status"] for r in results] == ["accepted", "accepted"], results
    assert results[1]["event_id"] == mine, "a given event_id is kept"
    pub = load_private_key(world["key"]).public_key()
    from ledger.signing import public_key_bytes

    for res in results:
        stored = _stored(world, res["event_id"])
        assert stored["spec"] == "auditledger/1" and stored["producer"] == "crm"
        assert "occurred_at" in stored
        assert verify_signature(public_key_bytes(pub), signing_input(stored), stored["sig"])


def test_an_unsigned_line_without_key_is_one_line_error(world: dict[str, Any]) -> None:
    proc, _ = _emit(world, "local", [_partial(6)], "unsigned-no-key")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {world['tmp'] / 'unsigned-no-key-local.jsonl'}:1: no sig: --key and "
        "--producer are needed to sign it"]
