"""The one canonicaliser: RFC 8785 (JCS) bytes of a JSON value.

Signatures and Merkle leaves are computed over these bytes, so every producer, the ledger
and every offline verifier must agree on them to the byte.

Fast path: ``orjson`` with sorted keys produces JCS exactly when (1) there are no floats,
(2) every integer is within IEEE-754's exact range, and (3) every object key is ASCII (orjson
sorts by code point, JCS by UTF-16 code unit; they agree on ASCII). Everything else goes to
the reference implementation (``rfc8785``). ``tests/test_canonical.py`` proves the two
byte-equal on generated documents.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

MAX_SAFE_INT = 2**53 - 1


def _fast_path_ok(value: Any) -> bool:
    """Whether orjson's sorted output is already JCS for ``value``. Iterative, with the
    common scalars checked inline: this runs on every ingested event."""
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is dict:
            for key in node:
                if type(key) is not str or not key.isascii():
                    return False
            items: Any = node.values()
        elif kind is list:
            items = node
        else:
            items = (node,)
        for item in items:
            t = type(item)
            if t is str or t is bool or item is None:
                continue
            if t is int:
                if -MAX_SAFE_INT <= item <= MAX_SAFE_INT:
                    continue
                return False
            if t is dict or t is list:
                stack.append(item)
                continue
            return False
    return True


def canonical_bytes(value: Any) -> bytes:
    """RFC 8785 canonical form of ``value`` (a parsed JSON document)."""
    if _fast_path_ok(value):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    return reference_canonical_bytes(value)


def signed_and_unsigned(envelope: dict[str, Any]) -> tuple[bytes, bytes]:
    """Canonical bytes of the envelope with and without ``sig``, walking it once: ingest
    needs both (the leaf preimage and the signed message) for every event."""
    unsigned = {k: v for k, v in envelope.items() if k != "sig"}
    if _fast_path_ok(envelope):
        opt = orjson.OPT_SORT_KEYS
        return orjson.dumps(envelope, option=opt), orjson.dumps(unsigned, option=opt)
    return reference_canonical_bytes(envelope), reference_canonical_bytes(unsigned)


def reference_canonical_bytes(value: Any) -> bytes:
    """The reference implementation; slow, used for unusual documents and in tests."""
    return rfc8785.dumps(value)
