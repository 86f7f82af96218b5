"""Ingest of sealed fields: a kid of the event's subject that opens, or ``sealed_invalid``
with the reason; the good events of the batch are stored all the same."""

from __future__ import annotations

import secrets
from datetime import timedelta

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.encoding import b64url
from ledger.ingest import Ingestor
from ledger.schemas import default_schemas
from ledger.sealing import aad, open_sealed
from ledger.verifier import Verifier
from tests.conftest import CONTROLLER, World
from tests.erasure.conftest import partial, psn, sealed_event, sign


def test_good_sealed_events_are_stored_and_open(world: World) -> None:
    alice = psn(world.ledger, "alice@example.org")
    env = sealed_event(world, alice, {"email": "alice@example.org", "name": "Alice"})
    (res,) = world.ledger.submit([env])
    assert res.status == "accepted"
    stored = world.ledger.log.lookup(CONTROLLER, [env["event_id"]])[env["event_id"]]
    body = stored.envelope()
    assert b"alice@example.org" not in stored.body and b"Alice" not in stored.body
    kid, key = world.ledger.keys.data_key(CONTROLLER, alice)
    assert body["sealed"]["kid"] == kid
    assert open_sealed(body["sealed"], key, CONTROLLER, env["event_id"]) == {
        "email": "alice@example.org", "name": "Alice"}


def test_bad_sealed_fields_are_rejected_and_the_rest_of_the_batch_is_kept(
        world: World) -> None:
    ledger = world.ledger
    alice, bob = psn(ledger, "alice@example.org"), psn(ledger, "bob@example.org")
    good1 = sealed_event(world, alice)

    tampered = partial(world, alice)
    from ledger.sealing import seal_envelope

    seal_envelope(tampered, {"email": "alice@example.org"}, ledger.keys)
    ct = bytearray(tampered["sealed"]["ct"].encode())
    ct[5] = ord("A") if ct[5] != ord("A") else ord("B")
    tampered["sealed"]["ct"] = ct.decode()
    tampered = sign(world, tampered)

    unknown_kid = partial(world, alice)
    seal_envelope(unknown_kid, {"email": "x@example.org"}, ledger.keys)
    unknown_kid["sealed"]["kid"] = "dk_" + b64url(secrets.token_bytes(16))
    unknown_kid = sign(world, unknown_kid)

    # bob's key, on an event about alice
    wrong_subject = partial(world, alice)
    bob_kid, bob_key = ledger.keys.data_key(CONTROLLER, bob)
    nonce = secrets.token_bytes(12)
    wrong_subject["sealed"] = {"kid": bob_kid, "nonce": b64url(nonce), "ct": b64url(
        AESGCM(bob_key).encrypt(nonce, b'{"a":1}', aad(CONTROLLER, wrong_subject["event_id"])))}
    wrong_subject = sign(world, wrong_subject)

    # the right key, but a plaintext that is no JSON object
    not_object = partial(world, alice)
    kid, key = ledger.keys.data_key(CONTROLLER, alice)
    not_object["sealed"] = {"kid": kid, "nonce": b64url(nonce), "ct": b64url(
        AESGCM(key).encrypt(nonce, b"[1,2]", aad(CONTROLLER, not_object["event_id"])))}
    not_object = sign(world, not_object)

    # sealed for another event: the event id is associated data
    moved = partial(world, alice)
    moved["sealed"] = dict(good1["sealed"])
    moved = sign(world, moved)

    good2 = sealed_event(world, bob)
    results = ledger.submit([good1, tampered, unknown_kid, wrong_subject, not_object, moved,
                             good2])
    got = [(r.status, r.code) for r in results]
    bad = ("rejected", "sealed_invalid")
    assert got == [("accepted", None), bad, bad, bad, bad, bad, ("accepted", None)]
    details = [r.detail or "" for r in results]
    assert "does not decrypt" in details[1] and "does not decrypt" in details[5]
    assert "is not a data key of controller" in details[2]
    assert "is not a data key of this event's subject" in details[3]
    assert "not a JSON object" in details[4]
    assert [results[0].index, results[6].index] == [2, 3]
    assert ledger.log.size(CONTROLLER) == 4


def test_sealed_without_subject_is_a_schema_violation(world: World) -> None:
    alice = psn(world.ledger, "alice@example.org")
    env = partial(world, alice, type_="processing.performed",
                  data={"activity_id": "crm", "basis": "A6-1-b", "data_categories": ["contact"],
                        "subject_count": 1})
    from ledger.sealing import seal_envelope

    seal_envelope(env, {"email": "alice@example.org"}, world.ledger.keys)
    del env["subject"]
    (res,) = world.ledger.submit([sign(world, env)])
    assert (res.status, res.code) == ("rejected", "schema_violation")
    assert "subject" in (res.detail or "")


def test_a_bad_signature_is_named_before_the_sealed_field(world: World) -> None:
    alice = psn(world.ledger, "alice@example.org")
    env = sealed_event(world, alice)
    env["sealed"]["kid"] = "dk_unknown"
    (res,) = world.ledger.submit([env])  # the signature no longer covers it
    assert res.code == "bad_signature"


def test_a_kid_already_destroyed_is_accepted(world: World) -> None:
    ledger = world.ledger
    alice = psn(ledger, "alice@example.org")
    late = sealed_event(world, alice)  # sealed before the erasure, delivered after it
    assert ledger.submit([sealed_event(world, alice)])[0].status == "accepted"
    world.clock.advance(timedelta(seconds=1))
    ledger.erase_subject(CONTROLLER, alice)
    (res,) = ledger.submit([late])
    assert res.status == "accepted", res.to_dict()
    # and its ciphertext is not even looked at: garbage under the destroyed kid passes
    garbage = partial(world, alice)
    garbage["sealed"] = {"kid": late["sealed"]["kid"], "nonce": b64url(b"n" * 12),
                         "ct": b64url(b"not a ciphertext")}
    assert ledger.submit([sign(world, garbage)])[0].status == "accepted"


def test_cached_keys_are_dropped_when_the_subject_is_erased(world: World) -> None:
    ledger = world.ledger
    alice, bob = psn(ledger, "alice@example.org"), psn(ledger, "bob@example.org")
    ledger.submit([sealed_event(world, alice), sealed_event(world, bob)])
    checker = ledger.ingestor.sealed
    assert checker is not None
    cached = {subject for subject, _ in checker._keys.values()}
    assert cached == {alice, bob}
    world.clock.advance(timedelta(seconds=1))
    ledger.erase_subject(CONTROLLER, alice)
    assert {subject for subject, _ in checker._keys.values()} == {bob}


def test_an_ingestor_without_key_store_keeps_the_old_behaviour(world: World) -> None:
    """Tools without a key store check sealed fields by schema only."""
    ledger = world.ledger
    alice = psn(ledger, "alice@example.org")
    env = partial(world, alice)
    env["sealed"] = {"kid": "dk_nobody", "nonce": b64url(b"n" * 12), "ct": b64url(b"x")}
    ing = Ingestor(ledger.log, default_schemas(), world.clock, Verifier(0))
    assert ing.sealed is None
    assert ing.submit([sign(world, env)])[0].status == "accepted"


def test_a_producer_may_erase_and_its_erasure_destroys_the_keys(world: World) -> None:
    """Whoever sends subject.erased (crm may emit '*'), storing it destroys the keys."""
    ledger = world.ledger
    alice = psn(ledger, "alice@example.org")
    ledger.submit([sealed_event(world, alice)])
    (kid,) = ledger.keys.subject_state(CONTROLLER, alice).live
    world.clock.advance(timedelta(seconds=1))
    erased = partial(world, alice, type_="subject.erased", data={
        "keys_destroyed_at": partial(world, None)["occurred_at"], "key_ids": [kid]})
    (res,) = ledger.submit([sign(world, erased)])
    assert res.status == "accepted"
    state = ledger.keys.subject_state(CONTROLLER, alice)
    assert state.live == [] and state.destroyed == [kid]
    assert state.erased_at is not None
