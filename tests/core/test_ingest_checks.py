"""Every rejection code of DESIGN.md, idempotency, and that good events in a bad batch stay."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest

from ledger.codes import MAX_EVENT_BYTES
from ledger.envelope import complete
from ledger.signing import generate_key, public_key_text, sign_envelope
from tests.conftest import CONTROLLER, OTHER, World


def submit_one(world: World, item: object) -> dict:
    raw = item if isinstance(item, bytes) else orjson.dumps(item)
    (res,) = world.ledger.submit([raw])
    return res.to_dict()


def assert_rejected(world: World, item: object, code: str) -> None:
    before = world.ledger.log.last_seq()
    res = submit_one(world, item)
    assert res["status"] == "rejected", res
    assert res["code"] == code, res
    assert res["detail"]
    assert world.ledger.log.last_seq() == before, "a rejected event must not be stored"


def test_accepts_a_good_event(world: World) -> None:
    res = submit_one(world, world.event())
    assert res["status"] == "accepted"
    assert res["index"] == 2  # after controller.registered and producer.registered
    stored = world.ledger.log.event_at(CONTROLLER, 2)
    assert stored is not None and stored.event_id == res["event_id"]


def test_stored_event_fits_a_tlog_entry(world: World) -> None:
    """The stored bytes are a tlog-tiles entry (uint16 length): 65,535 bytes at most."""
    from ledger.canonical import canonical_bytes
    from ledger.codes import MAX_ENTRY_BYTES

    def sized(n: int) -> dict:
        blob = 60_000
        for _ in range(3):  # the envelope around the blob has a fixed length
            ev = world.event(data={"purposes": ["x"], "method": "m", "notice_version": "v",
                                   "ext": {"blob": "a" * blob}})
            blob += n - len(canonical_bytes(ev))
        assert len(canonical_bytes(ev)) == n
        return ev

    assert_rejected(world, sized(MAX_ENTRY_BYTES + 1), "too_large")
    assert submit_one(world, sized(MAX_ENTRY_BYTES))["status"] == "accepted"


def test_malformed_json(world: World) -> None:
    assert_rejected(world, b'{"spec": "auditledger/1",', "malformed_json")


def test_too_large(world: World) -> None:
    ev = world.event(data={"purposes": ["x"], "method": "m", "notice_version": "v",
                           "ext": {"blob": "a" * MAX_EVENT_BYTES}})
    assert_rejected(world, ev, "too_large")


def test_schema_violation(world: World) -> None:
    ev = world.event(data={"purposes": "not-a-list", "method": "m", "notice_version": "v"})
    assert_rejected(world, ev, "schema_violation")


def test_unknown_field_is_a_schema_violation(world: World) -> None:
    ev = world.event(data={"purposes": ["x"], "method": "m", "notice_version": "v", "colour": 1})
    assert_rejected(world, ev, "schema_violation")


def test_float_is_a_schema_violation(world: World) -> None:
    ev = world.event(data={"purposes": ["x"], "method": "m", "notice_version": "v",
                           "ext": {"score": 0.5}})
    assert_rejected(world, ev, "schema_violation")


def test_unknown_type(world: World) -> None:
    assert_rejected(world, world.event(type_="consent.sold", data={}), "unknown_type")


def test_unknown_controller(world: World) -> None:
    assert_rejected(world, world.event(controller=OTHER), "unknown_controller")


def test_unknown_producer(world: World) -> None:
    assert_rejected(world, world.event(producer="ghost", key=generate_key()), "unknown_producer")


def test_type_not_allowed(world: World) -> None:
    key = generate_key()
    world.ledger.register_producer(CONTROLLER, "web", public_key_text(key), ["consent.*"])
    ok = world.event(producer="web", key=key)
    assert submit_one(world, ok)["status"] == "accepted"
    bad = world.event(type_="breach.detected", subject=None, producer="web", key=key,
                      data={"breach_id": "b1", "detected_at": "2026-11-20T10:00:00Z",
                            "description": "laptop lost"})
    assert_rejected(world, bad, "type_not_allowed")


def test_producer_may_not_emit_admin_events(world: World) -> None:
    ev = world.event(type_="producer.registered", subject=None, data={
        "producer_id": "evil", "public_key": public_key_text(generate_key()), "types": ["*"]})
    assert_rejected(world, ev, "type_not_allowed")


def test_producer_revoked_from_its_instant(world: World) -> None:
    revoked_at = world.clock.now()
    world.ledger.revoke_producer(CONTROLLER, "crm", "2026-11-20T12:00:00.000Z")
    before = world.event(occurred_at="2026-11-20T11:59:59.000Z")
    assert submit_one(world, before)["status"] == "accepted", "late delivery of older event"
    world.clock.set(revoked_at + timedelta(minutes=1))
    assert_rejected(world, world.event(), "producer_revoked")


def test_bad_signature(world: World) -> None:
    ev = world.event()
    ev["data"]["method"] = "tampered"
    assert_rejected(world, ev, "bad_signature")


def test_signature_by_another_key(world: World) -> None:
    ev = sign_envelope(world.event(), generate_key())
    assert_rejected(world, ev, "bad_signature")


def test_clock_skew(world: World) -> None:
    future = world.clock.now() + timedelta(minutes=6)
    ev = world.event(occurred_at=future.isoformat().replace("+00:00", "Z"))
    assert_rejected(world, ev, "clock_skew")
    near = world.clock.now() + timedelta(minutes=4)
    ok = world.event(occurred_at=near.isoformat().replace("+00:00", "Z"))
    assert submit_one(world, ok)["status"] == "accepted"


def test_duplicate_returns_first_receipt(world: World) -> None:
    ev = world.event()
    first = submit_one(world, ev)
    again = submit_one(world, ev)
    assert again["status"] == "duplicate"
    assert (again["index"], again["leaf_hash"]) == (first["index"], first["leaf_hash"])
    assert world.ledger.log.size(CONTROLLER) == first["index"] + 1


def test_event_id_conflict(world: World) -> None:
    ev = world.event()
    submit_one(world, ev)
    other = world.event(event_id=ev["event_id"], data={
        "purposes": ["other"], "method": "web_form", "notice_version": "v1"})
    assert_rejected(world, other, "event_id_conflict")


def test_duplicates_and_conflicts_inside_one_batch(world: World) -> None:
    ev = world.event()
    other = world.event(event_id=ev["event_id"], data={
        "purposes": ["other"], "method": "web_form", "notice_version": "v1"})
    res = [r.to_dict() for r in world.ledger.submit([ev, ev, other])]
    assert [r["status"] for r in res] == ["accepted", "duplicate", "rejected"]
    assert res[1]["index"] == res[0]["index"]
    assert res[2]["code"] == "event_id_conflict"


def test_good_events_in_a_bad_batch_are_kept(world: World) -> None:
    good = [world.event() for _ in range(5)]
    forged = world.event()
    forged["data"]["method"] = "forged"
    batch: list[object] = [good[0], b"{not json", good[1], forged, good[2],
                           world.event(controller=OTHER), good[3],
                           world.event(type_="nope.nope", data={}), good[4]]
    raw = [b if isinstance(b, bytes) else orjson.dumps(b) for b in batch]
    res = [r.to_dict() for r in world.ledger.submit(raw)]
    assert [r["status"] for r in res] == ["accepted", "rejected", "accepted", "rejected",
                                          "accepted", "rejected", "accepted", "rejected",
                                          "accepted"]
    assert [r.get("code") for r in res if r["status"] == "rejected"] == [
        "malformed_json", "bad_signature", "unknown_controller", "unknown_type"]
    indexes = [r["index"] for r in res if r["status"] == "accepted"]
    assert indexes == list(range(indexes[0], indexes[0] + 5)), "dense, in input order"
    stored = {e.event_id for e in world.ledger.log.events(controller=CONTROLLER)}
    assert {g["event_id"] for g in good} <= stored
    assert forged["event_id"] not in stored or forged["event_id"] == good[0]["event_id"]


def test_registration_and_use_in_the_same_batch(world: World) -> None:
    key = generate_key()
    admin_key_file = world.ledger.cfg.admin_key_file(CONTROLLER)
    from ledger.signing import load_private_key

    admin = load_private_key(admin_key_file)
    reg = complete({"type": "producer.registered", "controller": CONTROLLER, "data": {
        "producer_id": "soc", "public_key": public_key_text(key), "types": ["breach.*"]}},
        admin, "admin", world.clock)
    ev = world.event(type_="breach.detected", subject=None, producer="soc", key=key, data={
        "breach_id": "b1", "detected_at": "2026-11-20T10:00:00Z", "description": "x"})
    res = [r.status for r in world.ledger.submit([ev, reg, ev])]
    assert res == ["rejected", "accepted", "accepted"]


def test_stateful_oddities_are_kept_not_rejected(world: World) -> None:
    # A withdrawal nobody consented to and a notification for an unknown breach are
    # evidence: the ledger keeps them (projections raise findings).
    withdrawal = world.event(type_="consent.withdrawn", subject="nobody@example.org",
                             data={"purposes": ["newsletter"], "method": "email"})
    notice = world.event(type_="breach.notified_authority", subject=None, data={
        "breach_id": "never-seen", "authority": "Datatilsynet",
        "notified_at": "2026-11-20T11:00:00Z", "phase": "initial"})
    assert [r.status for r in world.ledger.submit([withdrawal, notice])] == [
        "accepted", "accepted"]


def test_controller_self_registration_needs_its_own_key(world: World) -> None:
    admin = generate_key()
    reg = complete({"type": "controller.registered", "controller": OTHER, "data": {
        "name": "Conscensia A/S", "country": "DK", "timezone": "Europe/Copenhagen",
        "admin_public_key": public_key_text(generate_key())}}, admin, "admin", world.clock)
    assert_rejected(world, reg, "bad_signature")


def test_takeover_of_a_registered_controller_is_refused(world: World) -> None:
    intruder = generate_key()
    reg = complete({"type": "controller.registered", "controller": CONTROLLER, "data": {
        "name": "Evil", "country": "NO", "timezone": "Europe/Oslo",
        "admin_public_key": public_key_text(intruder)}}, intruder, "admin", world.clock)
    assert_rejected(world, reg, "bad_signature")


@pytest.mark.parametrize("workers", [1])
def test_parallel_verification_gives_the_same_answers(world: World, workers: int) -> None:
    from ledger.verifier import Verifier

    world.ledger.ingestor.verifier = Verifier(workers)
    try:
        events = [world.event() for _ in range(400)]
        for i in range(0, 400, 37):
            events[i]["data"]["method"] = "forged"
        res = world.ledger.submit(events)
        bad = [i for i, r in enumerate(res) if r.status == "rejected"]
        assert bad == list(range(0, 400, 37))
        assert all(res[i].code == "bad_signature" for i in bad)
    finally:
        world.ledger.ingestor.verifier.close()
