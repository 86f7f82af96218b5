"""An envelope signed by an independent implementation of DESIGN.md verifies, and ours
verifies independently. The independent side uses only rfc8785, cryptography and base64."""

from __future__ import annotations

import base64
import hashlib
import uuid

import orjson
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.conftest import CONTROLLER, World


def independent_sign(envelope: dict, key: Ed25519PrivateKey) -> dict:
    unsigned = {k: v for k, v in envelope.items() if k != "sig"}
    sig = key.sign(b"auditledger/1\n" + rfc8785.dumps(unsigned))
    return {**unsigned, "sig": base64.urlsafe_b64encode(sig).rstrip(b"=").decode()}


def independent_verify(envelope: dict, public_key: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    unsigned = {k: v for k, v in envelope.items() if k != "sig"}
    sig = base64.urlsafe_b64decode(envelope["sig"] + "==")
    Ed25519PublicKey.from_public_bytes(public_key).verify(
        sig, b"auditledger/1\n" + rfc8785.dumps(unsigned))


def test_independently_signed_envelope_is_accepted(world: World) -> None:
    env = {
        "spec": "auditledger/1",
        "event_id": str(uuid.uuid4()),
        "type": "consent.given",
        "controller": CONTROLLER,
        "producer": "crm",
        "occurred_at": "2026-11-20T11:00:00.000+01:00",
        "subject": "psn:" + base64.urlsafe_b64encode(hashlib.sha256(b"x").digest())
        .rstrip(b"=").decode(),
        "data": {"purposes": ["newsletter", "Ørsta kurs"], "method": "web_form",
                 "notice_version": "2024-05", "ext": {"n": 3, "note": "é\u2028\t"}},
    }
    signed = independent_sign(env, world.key)
    (res,) = world.ledger.submit([orjson.dumps(signed)])
    assert res.status == "accepted", res
    stored = world.ledger.log.event_at(CONTROLLER, res.index)
    assert stored is not None
    # The stored body is the JCS of the whole envelope, and the leaf is RFC 9162's.
    assert stored.body == rfc8785.dumps(signed)
    assert stored.leaf_hash == hashlib.sha256(b"\x00" + rfc8785.dumps(signed)).digest()


def test_our_signature_verifies_independently(world: World) -> None:
    env = world.event()
    pub = world.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    independent_verify(env, pub)
    assert len(base64.urlsafe_b64decode(env["sig"] + "==")) == 64
    assert "=" not in env["sig"]
