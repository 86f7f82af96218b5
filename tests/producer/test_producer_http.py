"""The producer client against a real ``auditledger serve``: delivery, receipts and
inclusion proofs, dead letters, back-pressure, a ``kill -9`` of the business process and
an outage of the ledger — each event stored exactly once."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from ledger.checkpoint import verifier_key
from ledger.client import (
    AsyncProducer,
    FlushTimeout,
    InclusionError,
    OutboxFull,
    OutboxLocked,
    Producer,
)
from ledger.encoding import b64
from ledger.envelope import pseudonym
from ledger.signing import generate_key
from tests.conftest import CONTROLLER, free_port
from tests.producer.crash import assert_exactly_once, kill_9, read_accepted, start_emitter
from tests.serving import log_event_ids

CONSENT = {"purposes": ["newsletter"], "method": "web_form", "notice_version": "v1"}
SUBJECT_KEY = b"k" * 32


def producer(served: dict[str, Any], outbox: Path, **kw: Any) -> Producer:
    opts: dict[str, Any] = {"producer": "crm", "key": served["key"], "outbox": outbox,
                            "controller": CONTROLLER, "url": served["url"],
                            "api_key": served["producer"], "subject_key": SUBJECT_KEY,
                            "log_key": served["log_key"],
                            "reader_api_key": served["auditor"], **kw}
    return Producer(**opts)


def test_events_are_delivered_with_receipts_and_checked_proofs(
        served: dict[str, Any], tmp_path: Path) -> None:
    p = producer(served, tmp_path / "outbox.sqlite")
    try:
        ids = [p.emit("consent.given", CONSENT, identifier=f"u{i}@example.org")
               for i in range(30)]
        p.flush(timeout=60)
        assert p.metrics()["queued"] == 0 and p.metrics()["sent"] == 30
        assert p.pending() == []
        rec = p.receipt(ids[7])
        assert rec is not None and rec["status"] == "accepted"
        assert rec["leaf_hash"] == rec["local_leaf_hash"]
        got = p.check_inclusion(ids[7])
        assert got["index"] == rec["index"] and got["tree_size"] >= 30
        assert log_event_ids(served["url"], served["admin"])[-30:] == ids

        # a later checkpoint must extend the one verified before
        known = p.outbox.checkpoint(CONTROLLER)
        assert known is not None and known[0] == got["tree_size"]
        more = [p.emit("consent.given", CONSENT, identifier=f"v{i}@example.org")
                for i in range(5)]
        p.flush(timeout=60)
        assert p.check_inclusion(more[-1])["tree_size"] > known[0]
        assert p.check_inclusion(ids[0])["index"] == p.receipt(ids[0])["index"]  # type: ignore[index]
        size = p.outbox.checkpoint(CONTROLLER)[0]  # type: ignore[index]
        p.outbox.keep_checkpoint(CONTROLLER, size - 2, b64(b"\x00" * 32))  # "seen" a fork
        with pytest.raises(InclusionError, match="not consistent"):
            p.check_inclusion(more[-1])
    finally:
        assert p.close() == 0


def test_a_checkpoint_not_signed_by_the_pinned_key_fails(
        served: dict[str, Any], tmp_path: Path) -> None:
    other = verifier_key("auditledger", generate_key().public_key())
    p = producer(served, tmp_path / "outbox.sqlite", log_key=other)
    try:
        event_id = p.emit("consent.given", CONSENT, identifier="ann@example.org")
        p.flush(timeout=60)
        with pytest.raises(InclusionError, match="signature"):
            p.check_inclusion(event_id)
    finally:
        p.close()


def test_a_refused_event_goes_to_the_dead_letters_once(
        served: dict[str, Any], tmp_path: Path) -> None:
    p = producer(served, tmp_path / "outbox.sqlite")
    try:
        good = p.emit("consent.given", CONSENT, identifier="ann@example.org")
        bad = p.emit("consent.given", {"purposes": ["newsletter"]},  # no method
                     identifier="ann@example.org")
        p.flush(timeout=60)
        assert p.receipt(bad)["code"] == "schema_violation"  # type: ignore[index]
        assert [d["event_id"] for d in p.dead_letters()] == [bad]
        assert p.metrics() | {"oldest_age_s": 0} == {
            "queued": 0, "sent": 1, "failed": 1, "oldest_age_s": 0, "send_errors": 0,
            "last_error": None}
        assert log_event_ids(served["url"], served["admin"])[-1] == good
        assert p.forget_receipts(3600) == 0
        assert p.forget_receipts(0) == 2
        assert p.receipt(good) is None and p.dead_letters() == []
    finally:
        p.close()


def test_a_signed_envelope_is_sent_as_given(served: dict[str, Any], tmp_path: Path) -> None:
    p = producer(served, tmp_path / "outbox.sqlite")
    try:
        env = p.build("consent.given", CONSENT, identifier="bo@example.org")
        assert env["subject"] == pseudonym(SUBJECT_KEY, "BO@example.org ")
        assert p.emit_envelopes([env, env]) == [env["event_id"]] * 2  # queued once
        p.flush(timeout=60)
        from ledger.canonical import canonical_bytes
        from ledger.merkle import leaf_hash

        rec = p.receipt(env["event_id"])
        assert rec is not None and rec["leaf_hash"] == b64(leaf_hash(canonical_bytes(env)))
        assert p.metrics()["sent"] == 1
    finally:
        p.close()


def test_a_full_outbox_blocks_then_raises(tmp_path: Path, served: dict[str, Any]) -> None:
    down = {**served, "url": f"http://127.0.0.1:{free_port()}"}
    p = producer(down, tmp_path / "outbox.sqlite", max_queued=5, full_timeout=0.3)
    try:
        ids = [p.emit("consent.given", CONSENT, subject="psn:x") for _ in range(5)]
        began = time.monotonic()
        with pytest.raises(OutboxFull, match="limit 5"):
            p.emit("consent.given", CONSENT, subject="psn:x")
        assert time.monotonic() - began >= 0.3
        deadline = time.monotonic() + 20
        while p.metrics()["send_errors"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        m = p.metrics()
        assert m["queued"] == 5 and "cannot reach" in m["last_error"]
        assert [x["event_id"] for x in p.pending()] == ids
        assert p.pending()[0]["attempts"] >= 1
    finally:
        assert p.close(timeout=0.5) == 5


def test_async_producer(served: dict[str, Any], tmp_path: Path) -> None:
    async def go() -> list[str]:
        async with AsyncProducer(producer="crm", key=served["key"],
                                 outbox=tmp_path / "outbox.sqlite", controller=CONTROLLER,
                                 url=served["url"], api_key=served["producer"],
                                 subject_key=SUBJECT_KEY, log_key=served["log_key"],
                                 reader_api_key=served["auditor"]) as p:
            ids = await asyncio.gather(*(p.emit("consent.given", CONSENT,
                                                identifier=f"a{i}@example.org")
                                         for i in range(10)))
            await p.flush(timeout=60)
            assert p.metrics()["sent"] == 10
            assert (await p.check_inclusion(ids[3]))["index"] == p.receipt(ids[3])["index"]  # type: ignore[index]
            return list(ids)

    ids = asyncio.run(go())
    assert sorted(log_event_ids(served["url"], served["admin"])[-10:]) == sorted(ids)


# -- crashes and outages ---------------------------------------------------------------------


def test_kill_9_of_the_business_process_loses_nothing(
        served: dict[str, Any], tmp_path: Path) -> None:
    """The emitter runs while the ledger is up, then while it is down; it is killed with
    events delivered, in flight and queued. A new Producer on its outbox delivers the
    rest once the ledger is back."""
    outbox = tmp_path / "outbox.sqlite"
    before = log_event_ids(served["url"], served["admin"])
    proc = start_emitter({"key": str(served["key"]), "outbox": str(outbox),
                          "url": served["url"], "api_key": served["producer"],
                          "count": 2000, "batch": 20})
    accepted: list[str] = []
    try:
        read_accepted(proc, accepted, 200)
        served["serve"].stop()
        read_accepted(proc, accepted, 400)
    finally:
        kill_9(proc, accepted)
    served["serve"].start()
    p = producer(served, outbox)
    try:
        left = p.metrics()["queued"]
        assert left >= 100  # what was emitted while the ledger was down
        p.flush(timeout=120)
        stored = log_event_ids(served["url"], served["admin"])
        assert_exactly_once(stored, accepted, before)
        assert p.metrics()["queued"] == 0
    finally:
        p.close()


def test_a_resend_of_delivered_events_is_a_duplicate(
        served: dict[str, Any], tmp_path: Path) -> None:
    """The crash between the ledger's answer and the outbox's update: the events are
    sent again (a copy of the outbox taken before the answer stands for it) and the
    ledger answers ``duplicate``: same bytes, same event ids, stored once."""
    serve = served["serve"]
    before = log_event_ids(served["url"], served["admin"])
    serve.stop()
    outbox, copy = tmp_path / "outbox.sqlite", tmp_path / "copy.sqlite"
    p = producer(served, outbox)
    ids = [p.emit("consent.given", CONSENT, identifier=f"u{i}@example.org") for i in range(50)]
    assert p.close(timeout=0.5) == 50
    shutil.copy(outbox, copy)
    serve.start()
    for path, status in ((outbox, "accepted"), (copy, "duplicate")):
        q = producer(served, path)
        try:
            q.flush(timeout=60)
            assert {q.receipt(e)["status"] for e in ids} == {status}  # type: ignore[index]
        finally:
            q.close()
    assert_exactly_once(log_event_ids(served["url"], served["admin"]), ids, before)


def test_a_ledger_outage_while_emitting_loses_nothing(
        served: dict[str, Any], tmp_path: Path) -> None:
    serve = served["serve"]
    before = log_event_ids(served["url"], served["admin"])
    p = producer(served, tmp_path / "outbox.sqlite", batch_size=50)
    try:
        ids = [p.emit("consent.given", CONSENT, identifier=f"u{i}@example.org")
               for i in range(100)]
        serve.stop()
        slowest = 0.0
        for i in range(100, 400):  # the ledger is down: emit must not wait for it
            began = time.monotonic()
            ids.append(p.emit("consent.given", CONSENT, identifier=f"u{i}@example.org"))
            slowest = max(slowest, time.monotonic() - began)
        assert slowest < 1.0
        deadline = time.monotonic() + 30
        while p.metrics()["send_errors"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert p.metrics()["queued"] > 0
        serve.start()
        p.flush(timeout=120)
        assert p.metrics()["queued"] == 0 and p.metrics()["last_error"] is None
        stored = log_event_ids(served["url"], served["admin"])
        assert_exactly_once(stored, ids, before)
        assert len(stored) == len(before) + 400
    finally:
        p.close()


def test_a_refused_request_keeps_the_events_and_says_why(
        served: dict[str, Any], tmp_path: Path) -> None:
    p = producer(served, tmp_path / "outbox.sqlite", api_key="alk_wrong_key")
    try:
        event_id = p.emit("consent.given", CONSENT, identifier="ann@example.org")
        with pytest.raises(FlushTimeout, match="401"):
            p.flush(timeout=3)
        assert p.receipt(event_id) == {"event_id": event_id, "status": "queued"}
        assert p.metrics()["queued"] == 1 and p.dead_letters() == []
        with pytest.raises(OutboxLocked):  # one process owns an outbox
            producer(served, tmp_path / "outbox.sqlite")
    finally:
        assert p.close(timeout=0.5) == 1
    q = producer(served, tmp_path / "outbox.sqlite")  # the right key, after a restart
    try:
        q.flush(timeout=60)
        assert q.receipt(event_id)["status"] == "accepted"  # type: ignore[index]
    finally:
        q.close()


def test_a_remote_producer_seals_with_the_ledgers_data_key(
        served: dict[str, Any], tmp_path: Path) -> None:
    """No key store beside the producer: it takes the subject's data key from
    ``POST …/subjects/data-key`` with its producer API key, seals, signs and sends; the
    ledger checked the sealed field at ingest and opens it with its own key store."""
    import httpx

    from ledger.config import Config
    from ledger.keystore import open_keystore
    from ledger.sealing import view

    p = producer(served, tmp_path / "outbox.sqlite")
    try:
        event_id = p.emit("consent.given", CONSENT, identifier="Ann.Berg@example.org",
                          sealed={"email": "Ann.Berg@example.org", "name": "Ann Berg"})
        p.flush(timeout=60)
        assert p.receipt(event_id)["status"] == "accepted"  # type: ignore[index]
    finally:
        assert p.close() == 0
    outbox = b"".join(f.read_bytes() for f in tmp_path.glob("outbox.sqlite*"))
    assert b"Ann Berg" not in outbox and b"ann.berg" not in outbox.lower()  # only ciphertext
    r = httpx.get(f"{served['url']}/v1/controllers/{CONTROLLER}/events",
                  headers={"Authorization": f"Bearer {served['admin']}"})
    (env,) = [e for e in r.json()["items"] if e["event_id"] == event_id]
    assert env["subject"] == pseudonym(SUBJECT_KEY, "ann.berg@example.org")
    store = open_keystore(Config.load(served["data"]))
    try:
        opened = view(env, store, open_=True)
        assert opened["state"] == "sealed"
        assert opened["fields"] == {"email": "Ann.Berg@example.org", "name": "Ann Berg"}
        assert store.subject_state(CONTROLLER, env["subject"]).live == [opened["kid"]]
    finally:
        store.close()
