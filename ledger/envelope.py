"""Building envelopes on the producer side, and pseudonymous subject references."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
import uuid
from collections.abc import Mapping
from typing import Any

import phonenumbers
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import SPEC
from ledger.clock import Clock, SystemClock, format_rfc3339
from ledger.encoding import b64url
from ledger.signing import sign_envelope


def new_event_id() -> str:
    return str(uuid.uuid4())


#: Looks like a telephone number: digits with the usual separators, at least six digits.
_PHONE_LIKE = re.compile(r"^\+?[0-9 ()./-]+$")


class IdentifierError(ValueError):
    """An identifier that cannot be normalised (empty, or a phone number that is not one)."""


def normalise_identifier(identifier: str, region: str | None = None) -> str:
    """One person, one pseudonym, however the business system spelled the identifier.

    - an e-mail address (has ``@``): NFKC, trimmed, lower-cased;
    - a telephone number (digits and separators, ``+`` first or a ``region``): E.164
      (``+4791234567``), parsed by ``phonenumbers``; ``region`` is the ISO country whose
      national numbers are meant when there is no ``+`` (the controller's country);
    - anything else (a customer number): NFKC and trimmed, case kept.
    A string that looks like a phone number but is not a valid one keeps the last rule,
    so a customer number of digits is never rewritten into someone's phone number.
    """
    text = unicodedata.normalize("NFKC", identifier).strip()
    if not text:
        raise IdentifierError("an empty identifier has no pseudonym")
    if "@" in text:
        return text.lower()
    if _PHONE_LIKE.match(text) and sum(c.isdigit() for c in text) >= 6:
        try:
            number = phonenumbers.parse(text, region.upper() if region else None)
        except phonenumbers.NumberParseException:
            return text
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return text


def pseudonym(subject_key: bytes, identifier: str, region: str | None = None) -> str:
    """``psn:`` + base64url(HMAC-SHA256(controller's subject key, normalised identifier))."""
    mac = hmac.new(subject_key, normalise_identifier(identifier, region).encode(),
                   hashlib.sha256)
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
