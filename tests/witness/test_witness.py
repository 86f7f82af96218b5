"""Witnessing against a real litewitness: cosignatures, the 409 size dance, refusals of a
forked or rolled-back checkpoint, and the cosignature format itself."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import Checkpoint, NoteError, sign_checkpoint
from ledger.merkle import consistency_proof
from ledger.sequencer import origin
from ledger.signing import load_private_key
from ledger.witness import (
    QuorumError,
    WitnessClient,
    Witnessing,
    WitnessRefused,
    check_quorum,
    cosign,
    cosigner_key,
    parse_cosigner_key,
    split_note,
    verified_cosignatures,
)
from tests.conftest import CONTROLLER, World
from tests.witness.conftest import Witness

ORIGIN = origin(CONTROLLER)


def _key(name: str) -> tuple[Ed25519PrivateKey, str]:
    k = Ed25519PrivateKey.generate()
    return k, cosigner_key(name, k.public_key())


# --------------------------------------------------------------------------- the format


def test_cosignature_lines_verify_and_every_mutation_fails(world: World) -> None:
    world.ledger.flush()
    note = world.ledger.log.latest_checkpoint(CONTROLLER).note
    body, _ = split_note(note)
    k1, v1 = _key("w1.example")
    k2, v2 = _key("w2.example")
    line = cosign(body, "w1.example", k1, 1_700_000_000)
    good = verified_cosignatures(note + line, [v1, v2])
    assert [(c.witness, c.timestamp) for c in good] == [("w1.example", 1_700_000_000)]
    assert check_quorum(note + line + cosign(body, "w2.example", k2, 5), [v1, v2], 2)
    with pytest.raises(QuorumError, match="1 of 2"):
        check_quorum(note + line, [v1, v2], 2)
    # The message commits to the timestamp and to the body: change either and it fails.
    raw = line.split(" ")[2]

    b = bytearray(base64.b64decode(raw))
    b[11] ^= 1  # the timestamp's last byte
    forged = f"— w1.example {base64.b64encode(bytes(b)).decode()}\n"
    with pytest.raises(NoteError, match="does not verify"):
        verified_cosignatures(note + forged, [v1])
    other_body = body.replace(body.splitlines()[1], str(int(body.splitlines()[1]) + 1))
    with pytest.raises(NoteError, match="does not verify"):
        verified_cosignatures(note + cosign(other_body, "w1.example", k1, 7), [v1])
    # A witness the verifier does not know is ignored, never counted.
    k3, _ = _key("w3.example")
    assert verified_cosignatures(note + cosign(body, "w3.example", k3, 1), [v1]) == []
    # A log key (type 0x01) is not a cosigner key, and an altered key id is refused.
    with pytest.raises(NoteError, match="0x04"):
        parse_cosigner_key(world.ledger.verifier_key)
    name, kid, key = v1.split("+", 2)
    with pytest.raises(NoteError, match="key id"):
        parse_cosigner_key(f"{name}+{int(kid, 16) ^ 1:08x}+{key}")


# --------------------------------------------------------------------------- real witness


def _sender(world: World, witness: Witness) -> Witnessing:
    return Witnessing(world.ledger.log, [{"url": witness.url, "vkey": witness.vkey}],
                      retry_timeout=2)


def test_real_witness_cosigns_each_new_checkpoint(world: World, witness: Witness) -> None:
    witness.add_log(ORIGIN, world.ledger.verifier_key)
    log = world.ledger.log
    world.ledger.flush()
    first = log.latest_checkpoint(CONTROLLER)
    sender = _sender(world, witness)
    assert sender.step() == 1, sender.status()
    lines = log.cosignatures(CONTROLLER, first.size)
    assert len(lines) == 1 and lines[0].startswith(f"— {witness.vkey.split('+')[0]} ")
    assert [c.witness for c in check_quorum(first.note + "".join(lines),
                                            [witness.vkey], 1)] == ["witness.test/w1"]
    assert sender.step() == 0  # nothing new: nothing sent

    world.ledger.submit([world.event() for _ in range(5)])
    world.ledger.flush()
    second = log.latest_checkpoint(CONTROLLER)
    assert second.size == first.size + 5
    # A sender that forgot what the witness holds (a restart) asks from 0, gets 409 with
    # the witness's size and proves consistency from there.
    fresh = _sender(world, witness)
    assert fresh.step() == 1, fresh.status()
    assert log.latest_cosigned(CONTROLLER).size == second.size
    check_quorum(second.note + "".join(log.cosignatures(CONTROLLER, second.size)),
                 [witness.vkey], 1)
    assert f"size {second.size}" in witness.known(ORIGIN)
    assert fresh.status()[0] | {"cosigned": None} == {
        "url": witness.url, "name": "witness.test/w1", "cosigned": None, "failures": 0,
        "last_error": None, "ok": True}


def test_real_witness_refuses_a_fork_and_a_rollback(world: World, witness: Witness) -> None:
    witness.add_log(ORIGIN, world.ledger.verifier_key)
    world.ledger.submit([world.event() for _ in range(3)])
    world.ledger.flush()
    sender = _sender(world, witness)
    assert sender.step() == 1
    cp = world.ledger.log.latest_checkpoint(CONTROLLER)
    key = load_private_key(world.ledger.cfg.log_key_file)
    client = WitnessClient(witness.url, witness.vkey)
    getter = world.ledger.log.node_getter(CONTROLLER)

    def prove(old: int) -> list[bytes]:
        return consistency_proof(getter, old, cp.size) if 0 < old <= cp.size else []

    # Same size, another root, validly signed by the log key: a split view.
    fork = sign_checkpoint(Checkpoint(ORIGIN, cp.size, hashlib.sha256(b"fork").digest()),
                           "auditledger", key)
    with pytest.raises(WitnessRefused) as refused:
        client.add_checkpoint(fork, cp.size, prove)
    assert refused.value.status == 422, refused.value  # litewitness; the spec says 409
    # A larger tree whose proof does not lead from what the witness holds.
    bigger = sign_checkpoint(Checkpoint(ORIGIN, cp.size + 1, hashlib.sha256(b"x").digest()),
                             "auditledger", key)
    with pytest.raises(WitnessRefused) as refused:
        client.add_checkpoint(bigger, cp.size + 1, lambda old: prove(old) if old else [])
    assert refused.value.status == 422, refused.value
    # A smaller tree (a rollback): the witness answers 409 with its larger size.
    small = sign_checkpoint(Checkpoint(ORIGIN, 1, hashlib.sha256(b"y").digest()),
                            "auditledger", key)
    with pytest.raises(WitnessRefused, match=f"cosigned size {cp.size}, larger"):
        client.add_checkpoint(small, 1, lambda old: [])
    # Signed by another key: 403, whatever the tree.
    stranger = sign_checkpoint(Checkpoint(ORIGIN, cp.size, cp.root), "auditledger",
                               Ed25519PrivateKey.generate())
    with pytest.raises(WitnessRefused) as refused:
        client.add_checkpoint(stranger, cp.size, prove, cp.size)
    assert refused.value.status == 403
    client.close()
    # The witness still holds the genuine tree head.
    assert f"size {cp.size}" in witness.known(ORIGIN)


def test_unknown_log_refusal_is_surfaced(world: World, witness: Witness) -> None:
    world.ledger.flush()  # the witness was never told about this log
    sender = _sender(world, witness)
    assert sender.step() == 0
    (st,) = sender.status()
    # The spec says 404 for an unknown origin; litewitness v0.6.1 answers 403.
    assert not st["ok"] and st["failures"] == 1, st
    assert "(HTTP 403): unknown log" in st["last_error"] or "(HTTP 404)" in st["last_error"]
    assert sender.step() == 0 and sender.status()[0]["failures"] == 1  # not re-sent


def test_unreachable_witness_is_retried_and_caught_up_later(
        world: World, witness: Witness) -> None:
    witness.add_log(ORIGIN, world.ledger.verifier_key)
    world.ledger.flush()
    witness.stop()
    sender = _sender(world, witness)  # stamina: 5 attempts within 2 s
    started = time.monotonic()
    assert sender.step() == 0
    assert time.monotonic() - started >= 1.0  # backed off between attempts
    (st,) = sender.status()
    assert not st["ok"] and st["failures"] == 1 and "ConnectError" in st["last_error"], st
    witness.start()  # same key, same database
    assert sender.step() == 1  # an outage is not a refusal: tried again on the next tick
    assert sender.status()[0]["ok"] and sender.status()[0]["last_error"] is None
