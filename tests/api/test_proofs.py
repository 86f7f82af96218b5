"""Checkpoints and proofs, checked with an RFC 9162 verifier and a signed-note verifier
written here from the RFC and the C2SP spec — not with ledger/merkle.py or checkpoint.py."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.api.conftest import Api
from tests.conftest import CONTROLLER, OTHER

# -- RFC 9162 §2.1.3.2 and §2.1.4.2, transcribed ---------------------------------------------


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def rfc_verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes],
                         root: bytes) -> bool:
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def rfc_verify_consistency(first: int, second: int, first_hash: bytes, second_hash: bytes,
                           proof: list[bytes]) -> bool:
    if first == second:
        return not proof and first_hash == second_hash
    if first > second or first == 0 or not proof:
        return False
    if first & (first - 1) == 0:  # a power of two: prepend first_hash
        proof = [first_hash, *proof]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _node(c, fr)
            sr = _node(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_hash and sr == second_hash and sn == 0


# -- C2SP signed-note + tlog-checkpoint, transcribed ------------------------------------------


def open_note(note: str, vkey: str) -> tuple[str, int, bytes]:
    """Check the Ed25519 signature of ``note`` with verifier key ``vkey`` (name+hash+key);
    return the checkpoint's (origin, size, root)."""
    name, hash_hex, key_b64 = vkey.split("+", 2)  # base64 may contain "+"
    key = base64.b64decode(key_b64)
    assert key[0] == 1 and len(key) == 33  # 0x01 = Ed25519
    expected_hash = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    assert expected_hash.hex() == hash_hex
    text, _, sigs = note.partition("\n\n")
    text += "\n"
    for line in sigs.strip("\n").split("\n"):
        assert line.startswith("— ")
        sig_name, sig_b64 = line[2:].split(" ")
        raw = base64.b64decode(sig_b64)
        if sig_name == name and raw[:4] == expected_hash:
            Ed25519PublicKey.from_public_bytes(key[1:]).verify(raw[4:], text.encode())
            origin, size, root = text.rstrip("\n").split("\n")[:3]
            return origin, int(size), base64.b64decode(root)
    raise AssertionError("no signature by the log key")


def _leaf(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def test_checkpoint_is_signed_by_the_log_key(api: Api) -> None:
    cp = api.get(f"/v1/controllers/{CONTROLLER}/checkpoint").json()
    assert cp["log_key"] == api.world.ledger.verifier_key
    origin, size, root = open_note(cp["note"], api.world.ledger.verifier_key)
    assert origin == f"auditledger/{CONTROLLER}" == cp["origin"]
    assert size == cp["size"] == api.world.ledger.log.size(CONTROLLER)
    assert base64.b64encode(root).decode() == cp["root"]
    tampered = cp["note"].replace(f"\n{size}\n", f"\n{size + 1}\n")
    with pytest.raises(Exception):  # noqa: B017 - any verification failure
        open_note(tampered, api.world.ledger.verifier_key)


def test_inclusion_proofs_verify_independently(api: Api) -> None:
    vkey = api.world.ledger.verifier_key
    # Newer than the latest checkpoint: the API signs one first.
    fresh = api.event()
    assert api.post(fresh).status_code == 201
    for eid in [*api.ids[CONTROLLER], fresh["event_id"]]:
        r = api.get(f"/v1/controllers/{CONTROLLER}/proofs/inclusion/{eid}")
        assert r.status_code == 200, r.text
        p = r.json()
        stored = api.world.ledger.log.lookup(CONTROLLER, [eid])[eid]
        leaf = _leaf(stored.body)  # recomputed from the event bytes, not taken on trust
        assert base64.b64decode(p["leaf_hash"]) == leaf
        origin, size, root = open_note(p["checkpoint"], vkey)
        assert origin == f"auditledger/{CONTROLLER}" and size == p["tree_size"]
        proof = [base64.b64decode(h) for h in p["proof"]]
        assert rfc_verify_inclusion(p["index"], size, leaf, proof, root)
        assert not rfc_verify_inclusion(p["index"] ^ 1, size, leaf, proof, root) or size == 1


def test_consistency_proofs_verify_independently(api: Api) -> None:
    vkey = api.world.ledger.verifier_key
    old = api.get(f"/v1/controllers/{CONTROLLER}/checkpoint").json()
    for _ in range(3):
        api.post([api.event() for _ in range(7)])
        api.world.ledger.flush()
    new = api.get(f"/v1/controllers/{CONTROLLER}/checkpoint").json()
    _, m, old_root = open_note(old["note"], vkey)
    _, n, new_root = open_note(new["note"], vkey)
    assert n == m + 21
    r = api.get(f"/v1/controllers/{CONTROLLER}/proofs/consistency",
                params={"from": m, "to": n})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["from"] == m and doc["to"] == n
    proof = [base64.b64decode(h) for h in doc["proof"]]
    assert rfc_verify_consistency(m, n, old_root, new_root, proof)
    assert not rfc_verify_consistency(m, n, new_root, old_root, proof)
    # Every pair of stored checkpoints.
    cps = api.world.ledger.log.checkpoints(CONTROLLER)
    for a in cps:
        for b in cps:
            if 0 < a.size <= b.size:
                doc = api.get(f"/v1/controllers/{CONTROLLER}/proofs/consistency",
                              params={"from": a.size, "to": b.size}).json()
                proof = [base64.b64decode(h) for h in doc["proof"]]
                assert rfc_verify_consistency(a.size, b.size, a.root, b.root, proof)
    # `to` defaults to the latest checkpoint.
    assert api.get(f"/v1/controllers/{CONTROLLER}/proofs/consistency",
                   params={"from": m}).json()["to"] == n


def test_proof_errors(api: Api) -> None:
    base = f"/v1/controllers/{CONTROLLER}/proofs"
    size = api.world.ledger.log.size(CONTROLLER)
    r = api.get(f"{base}/consistency", params={"from": 3, "to": size + 1})
    assert r.status_code == 422 and r.json()["code"] == "invalid_range"
    r = api.get(f"{base}/consistency", params={"from": 4, "to": 3})
    assert r.status_code == 422 and r.json()["code"] == "invalid_range"
    r = api.get(f"{base}/consistency", params={"from": 0})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    r = api.get(f"{base}/inclusion/{api.ids[OTHER][0]}")  # another tenant's event
    assert r.status_code == 404 and r.json()["code"] == "not_found"
