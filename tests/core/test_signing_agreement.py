"""The verifier (libsodium) and the signer's library (cryptography/OpenSSL) agree."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.encoding import b64url
from ledger.signing import generate_key, public_key_bytes, verify_batch, verify_signature

KEY = generate_key()
PUB = public_key_bytes(KEY)
L = 2**252 + 27742317777372353535851937790883648493  # the group order


def openssl_accepts(pub: bytes, msg: bytes, sig: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


@settings(max_examples=300)
@given(st.binary(max_size=300), st.integers(0, 511), st.booleans())
def test_agree_on_valid_and_mutated_signatures(msg: bytes, bit: int, mutate: bool) -> None:
    sig = bytearray(KEY.sign(msg))
    if mutate:
        sig[bit // 8] ^= 1 << (bit % 8)
    ours = verify_signature(PUB, msg, b64url(bytes(sig)))
    assert ours == openssl_accepts(PUB, msg, bytes(sig))
    assert ours is (not mutate)


def test_non_canonical_s_is_refused_by_both() -> None:
    msg = b"auditledger/1\n{}"
    sig = KEY.sign(msg)
    s = int.from_bytes(sig[32:], "little") + L  # same point, non-canonical scalar
    forged = sig[:32] + s.to_bytes(32, "little")
    assert not verify_signature(PUB, msg, b64url(forged))
    assert not openssl_accepts(PUB, msg, forged)


def test_garbage_is_refused() -> None:
    assert verify_batch([(PUB, b"m", "not-base64!"), (b"short", b"m", b64url(bytes(64))),
                         (PUB, b"m", b64url(bytes(63)))]) == [False, False, False]
