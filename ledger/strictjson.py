"""Strict JSON input: I-JSON (RFC 7493) member names and a nesting bound.

RFC 8785 canonicalises I-JSON, and I-JSON forbids duplicate member names: with
``{"method": "a", "method": "b"}`` one parser sees ``a``, another ``b``, and a signature
over "the" document means two things. orjson keeps the last silently, so every event the
ledger parses from bytes is checked: a duplicate is ``malformed_json``. Fast path: when
orjson writes the parsed value back byte for byte as it came (compact JSON with orjson's
escaping: what the project's own client, ``emit`` and most JSON libraries send), no
member can have been dropped, so there was no duplicate (about 0.6 µs per event).
Otherwise the bytes are read once more by the standard library's C scanner with an
``object_pairs_hook`` that only compares lengths (about 4 µs per event).

Nesting: orjson reads 1024 levels but writes only 255, so an envelope nested 256-1024 deep
parsed and then failed canonicalisation. The ledger bounds nesting at ``MAX_DEPTH`` levels
(the envelope object is level 1); deeper is ``schema_violation``, enforced in
``ledger.schemas`` (the walk that already looks for floats) and, for documents orjson
cannot even read or write, here.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

MAX_DEPTH = 64
DEPTH_DETAIL = f"nested deeper than {MAX_DEPTH} levels"


class DuplicateName(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _pairs(pairs: list[tuple[str, Any]]) -> None:
    if len(pairs) > 1 and len({k for k, _ in pairs}) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise DuplicateName(k)
            seen.add(k)
    # Nothing is built: this parse only looks for duplicates (orjson built the value).


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs)  # type: ignore[arg-type]


def duplicate_name(raw: bytes | str, parsed: Any = None) -> str | None:
    """The first member name that occurs twice in one object of ``raw`` (JSON that orjson
    already accepted, as ``parsed`` when given), or None. A document too deep for the
    standard library is left to the depth bound."""
    if parsed is not None and isinstance(raw, bytes):
        try:
            # Byte-equal re-serialisation: every member of raw is in parsed, none dropped.
            if orjson.dumps(parsed) == raw:
                return None
        except TypeError:  # deeper than orjson writes: the slow path decides
            pass
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        _DECODER.decode(text)
    except DuplicateName as exc:
        return exc.name
    except (RecursionError, ValueError):
        return None
    return None


def duplicate_detail(name: str) -> str:
    return (f"member name {json.dumps(name, ensure_ascii=False)[:80]} appears twice in one "
            "object (I-JSON, RFC 7493 §2.3)")


_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},]', re.DOTALL)


def split_array(body: bytes) -> list[bytes] | None:
    """The raw bytes of each element of a top-level JSON array, or None if ``body`` is not
    one. The slow path of ``POST /v1/events``: when the body as a whole is refused (a
    duplicate name, nesting beyond the parser's limit) each event is judged alone, so one
    bad event does not cost the others their answer."""
    start = body.find(b"[")
    if start < 0 or body[:start].strip():
        return None
    out: list[bytes] = []
    depth, begin, end = 0, start + 1, -1
    for m in _TOKENS.finditer(body, start):
        tok = m.group()
        if tok[0] == 0x22:  # a string: brackets inside it do not count
            continue
        if tok in (b"[", b"{"):
            depth += 1
        elif tok in (b"]", b"}"):
            depth -= 1
            if depth == 0:
                end = m.start()
                break
        elif depth == 1:  # a comma between top-level elements
            out.append(body[begin : m.start()])
            begin = m.end()
    if end < 0 or body[end + 1 :].strip():
        return None
    last = body[begin:end]
    if last.strip():
        out.append(last)
    elif out:
        return None  # a trailing comma
    return [e.strip() for e in out]
