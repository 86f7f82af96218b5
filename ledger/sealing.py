"""Sealed fields: the personal details an event must keep, encrypted for one subject.

``sealed`` = ``{"kid", "nonce", "ct"}`` (unpadded base64url): AES-256-GCM under the
subject's data key ``kid`` (ledger/keystore.py), a 12-byte random nonce, the plaintext the
RFC 8785 canonical JSON of an object of fields, and as associated data
``b"auditledger/sealed/1\\n" + controller + b"\\n" + event_id`` — so a sealed field copied
into another event, or another controller's, does not open. The envelope's signature covers
``sealed`` like any other field: the ciphertext is what is proved, and once the key is
destroyed it proves an event without revealing anyone.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, Protocol

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.canonical import canonical_bytes
from ledger.encoding import EncodingError, b64url, unb64url

NONCE_BYTES = 12


class SealError(ValueError):
    """A sealed field that does not open: wrong key, nonce, ciphertext or associated data,
    or a plaintext that is not a JSON object."""


class DataKeys(Protocol):
    """Where a producer gets a subject's data key: a KeyStore beside the ledger, or the
    API's ``POST …/subjects/data-key`` for a remote producer."""

    def data_key(self, controller: str, subject: str) -> tuple[str, bytes]: ...


def aad(controller: str, event_id: str) -> bytes:
    return b"auditledger/sealed/1\n" + controller.encode() + b"\n" + event_id.encode()


def seal(fields: Mapping[str, Any], kid: str, key: bytes, controller: str, event_id: str,
         nonce: bytes | None = None) -> dict[str, str]:
    """Encrypt ``fields``. ``nonce`` is for test vectors only: a nonce used twice under
    one key breaks AES-GCM, so callers leave it to the random default."""
    if not isinstance(fields, Mapping) or not fields:
        raise SealError("sealed fields are a non-empty JSON object")
    nonce = secrets.token_bytes(NONCE_BYTES) if nonce is None else nonce
    if len(nonce) != NONCE_BYTES:
        raise SealError(f"the nonce is {NONCE_BYTES} bytes")
    ct = AESGCM(key).encrypt(nonce, canonical_bytes(dict(fields)), aad(controller, event_id))
    return {"kid": kid, "nonce": b64url(nonce), "ct": b64url(ct)}


def open_sealed(sealed: Mapping[str, Any], key: bytes, controller: str,
                event_id: str) -> dict[str, Any]:
    try:
        nonce = unb64url(sealed["nonce"], NONCE_BYTES)
        ct = unb64url(sealed["ct"])
    except (KeyError, TypeError, EncodingError) as exc:
        raise SealError(f"sealed: {exc}") from None
    try:
        plain = AESGCM(key).decrypt(nonce, ct, aad(controller, event_id))
    except InvalidTag:
        raise SealError(f"sealed: does not decrypt under data key {sealed.get('kid')} "
                        "(wrong key, nonce, ciphertext, controller or event id)") from None
    try:
        fields = orjson.loads(plain)
    except orjson.JSONDecodeError:
        raise SealError("sealed: the plaintext is not JSON") from None
    if not isinstance(fields, dict):
        raise SealError("sealed: the plaintext is not a JSON object")
    return fields


def seal_envelope(env: dict[str, Any], fields: Mapping[str, Any],
                  keys: DataKeys) -> dict[str, Any]:
    """Put ``fields`` in ``env["sealed"]`` under its subject's data key (before signing).
    The envelope needs ``controller``, ``event_id`` and ``subject``."""
    missing = [k for k in ("controller", "event_id", "subject") if not env.get(k)]
    if missing:
        raise SealError(f"sealing needs the envelope's {', '.join(missing)}")
    if "sig" in env:
        raise SealError("seal before signing: the signature must cover the sealed field")
    kid, key = keys.data_key(env["controller"], env["subject"])
    env["sealed"] = seal(fields, kid, key, env["controller"], env["event_id"])
    return env


def view(env: Mapping[str, Any], store: Any, open_: bool = False) -> dict[str, Any]:
    """What a reader may be told of an envelope's sealed field.

    ``state``: ``absent`` (no sealed field), ``sealed`` (kept; ``fields`` only with
    ``open_``, for a reader allowed to see personal data), ``erased`` (the key was
    destroyed: ``erased_at``), ``unreadable`` (no such key, or it does not open: the
    ledger refuses such events at ingest, so this means the key store was damaged or
    mixed up). ``store`` is a ``ledger.keystore.KeyStore``."""
    from ledger.keystore import Destroyed

    sealed = env.get("sealed")
    if not isinstance(sealed, Mapping):
        return {"state": "absent"}
    kid = sealed.get("kid")
    found = store.key(env["controller"], kid) if isinstance(kid, str) else None
    if isinstance(found, Destroyed):
        return {"state": "erased", "kid": kid, "erased_at": found.destroyed_at}
    if found is None:
        return {"state": "unreadable", "kid": kid, "reason": "no such data key"}
    try:
        fields = open_sealed(sealed, found.key, env["controller"], env["event_id"])
    except SealError as exc:
        return {"state": "unreadable", "kid": kid, "reason": str(exc)}
    out: dict[str, Any] = {"state": "sealed", "kid": kid}
    if open_:
        out["fields"] = fields
    return out
