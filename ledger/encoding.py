"""Byte encodings used on the wire.

Keys and signatures are unpadded base64url (DESIGN.md); hashes are standard base64 with
padding, as in C2SP checkpoints and RFC 9162 tooling.
"""

from __future__ import annotations

import base64
import binascii


class EncodingError(ValueError):
    pass


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str, length: int | None = None) -> bytes:
    """Decode unpadded base64url strictly (no padding, no stray characters)."""
    if "=" in text:
        raise EncodingError("base64url must be unpadded")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise EncodingError(f"not base64url: {exc}") from None
    if b64url(raw) != text:
        raise EncodingError("non-canonical base64url")
    if length is not None and len(raw) != length:
        raise EncodingError(f"expected {length} bytes, got {len(raw)}")
    return raw


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, length: int | None = None) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EncodingError(f"not base64: {exc}") from None
    if length is not None and len(raw) != length:
        raise EncodingError(f"expected {length} bytes, got {len(raw)}")
    return raw
