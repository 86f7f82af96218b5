"""The fast canonicaliser is byte-equal to the reference RFC 8785 implementation."""

from __future__ import annotations

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import MAX_SAFE_INT, canonical_bytes, reference_canonical_bytes

keys = st.text(min_size=0, max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-MAX_SAFE_INT, max_value=MAX_SAFE_INT)
    | st.text(max_size=20)
    | st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=10)  # control chars
)
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=1500)
@given(documents)
def test_fast_path_equals_reference(doc: object) -> None:
    assert canonical_bytes(doc) == rfc8785.dumps(doc)


@given(st.dictionaries(st.text(alphabet="\U0001f600\ue000a\u00e9", min_size=1, max_size=3),
                       st.integers(0, 9), min_size=2, max_size=5))
def test_non_ascii_keys_sort_by_utf16(doc: dict[str, int]) -> None:
    # U+E000 sorts after U+1F600 in UTF-16 (surrogates D83D..) but before it by code point.
    assert canonical_bytes(doc) == reference_canonical_bytes(doc)


def test_known_vectors() -> None:
    assert canonical_bytes({"b": 1, "a": [True, None, "x"]}) == b'{"a":[true,null,"x"],"b":1}'
    assert canonical_bytes({"\ue000": 1, "\U0001f600": 2}) == (
        '{"\U0001f600":2,"\ue000":1}'.encode()
    )
    assert canonical_bytes("\u000f\n") == b'"\\u000f\\n"'
    # Integers outside IEEE-754's exact range take the reference path (which refuses them).
    try:
        canonical_bytes(2**60)
    except Exception as exc:  # rfc8785.IntegerDomainError
        assert "integer" in type(exc).__name__.lower() or "domain" in str(exc).lower()
    else:
        raise AssertionError("2**60 must not be canonicalised silently")
