"""Building envelopes on the producer side, and pseudonymous subject references."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
import uuid
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import SPEC
from ledger.clock import Clock, SystemClock, format_rfc3339
from ledger.encoding import b64url
from ledger.signing import sign_envelope


def new_event_id() -> str:
    return str(uuid.uuid4())


def normalise_identifier(identifier: str) -> str:
    """E-mail addresses and the like: NFKC, trimmed, case-folded, so one person maps to one
    pseudonym however the business system spelled them."""
    return unicodedata.normalize("NFKC", identifier).strip().casefold()


def pseudonym(subject_key: bytes, identifier: str) -> str:
    """``psn:`` + base64url(HMAC-SHA256(controller's subject key, normalised identifier))."""
    mac = hmac.new(subject_key, normalise_identifier(identifier).encode(), hashlib.sha256)
    return "psn:" + b64url(mac.digest())


def complete(
    partial: Mapping[str, Any],
    key: Ed25519PrivateKey,
    producer: str,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """Fill in what a caller may leave out (``spec``, ``event_id``, ``producer``,
    ``occurred_at``) and sign. Fields the caller gave are kept as given."""
    env = dict(partial)
    env.setdefault("spec", SPEC)
    env.setdefault("event_id", new_event_id())
    env.setdefault("producer", producer)
    if "occurred_at" not in env:
        env["occurred_at"] = format_rfc3339((clock or SystemClock()).now())
    return sign_envelope(env, key)
