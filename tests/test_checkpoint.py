"""C2SP signed notes and tlog checkpoints.

Known answers come from golang.org/x/mod/sumdb/note (note_test.go): the PeterNeumann key
pair, its verifier key, and the exact signed note ``Sign`` produces for a fixed text
(Ed25519 signatures are deterministic, so byte equality is a real interoperability check).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import (
    Checkpoint,
    InvalidSignatureError,
    MalformedNoteError,
    NoteError,
    UnverifiedNoteError,
    checkpoint_body,
    key_hash,
    open_checkpoint,
    open_note,
    parse_checkpoint_body,
    parse_verifier_key,
    sign_checkpoint,
    sign_note,
    verifier_key,
)
from ledger.merkle import EMPTY_ROOT, MemoryNodes, leaf_hash, root_from_getter

# --------------------------------------------------------------------------- Go vectors

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg"
    "KvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01o"
    "OTGwnWLox33WWd1RvMc+QQ=\n"
)


def peter_key() -> Ed25519PrivateKey:
    raw = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert raw[0] == 0x01
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


VKEY_RE = re.compile(r"^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]{44})$")


def test_go_verifier_key_known_answer() -> None:
    name, kh, pk = parse_verifier_key(PETER_VKEY)
    assert (name, kh) == ("PeterNeumann", 0xC74F20A3)
    digest = hashlib.sha256(b"PeterNeumann\n\x01" + pk).digest()
    assert int.from_bytes(digest[:4], "big") == kh == key_hash(name, pk)
    assert verifier_key("PeterNeumann", peter_key().public_key()) == PETER_VKEY
    assert verifier_key("PeterNeumann", pk) == PETER_VKEY
    assert parse_verifier_key(ENOCH_VKEY)[:2] == ("EnochRoot", 0xAF0CFE78)


def test_go_sign_known_answer() -> None:
    assert sign_note(TEXT, "PeterNeumann", peter_key()) == TEXT + "\n" + PETER_SIG


def test_go_open_known_answers() -> None:
    both = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(both, [PETER_VKEY]) == TEXT  # Enoch's signature: unknown, ignored
    assert open_note(both, [PETER_VKEY, ENOCH_VKEY]) == TEXT
    assert open_note(TEXT + "\n" + ENOCH_SIG, [ENOCH_VKEY]) == TEXT
    with pytest.raises(UnverifiedNoteError):
        open_note(both, [])
    with pytest.raises(InvalidSignatureError):
        open_note(TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], [PETER_VKEY])


@pytest.mark.parametrize(
    "msg",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2"
        "pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG * 101,
    ],
    ids=["no-sigs", "blank-only", "no-final-newline", "control-char", "bad-name", "junk", "101"],
)
def test_go_malformed_notes(msg: str) -> None:
    with pytest.raises(MalformedNoteError):
        open_note(msg, [PETER_VKEY])


def test_go_verifier_key_manglings_rejected() -> None:
    """Every proper substring and every single-character increment must be rejected."""
    b = PETER_VKEY
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if (i, j) != (0, len(b)):
                with pytest.raises(NoteError):
                    parse_verifier_key(b[i:j])
    for i in range(len(b)):
        mangled = b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :]
        with pytest.raises(NoteError):
            parse_verifier_key(mangled)
    for bad in [
        # wrong-length key and unknown algorithm, each with a re-adjusted key hash
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ]:
        with pytest.raises(MalformedNoteError):
            parse_verifier_key(bad)


# --------------------------------------------------------------------------- our format

KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"auditledger test key").digest())
VKEY = verifier_key("auditledger", KEY.public_key())
OTHER = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"someone else").digest())
OTHER_VKEY = verifier_key("auditledger", OTHER.public_key())

STORE = MemoryNodes.from_leaves(leaf_hash(bytes([i])) for i in range(10))
CP = Checkpoint("auditledger/acme-gmbh", 10, root_from_getter(STORE, 10))


def test_verifier_key_format() -> None:
    m = VKEY_RE.fullmatch(VKEY)
    assert m is not None
    name, hash_hex, key64 = m.groups()
    raw = base64.b64decode(key64)
    assert raw[0] == 0x01 and len(raw) == 33
    digest = hashlib.sha256(name.encode() + b"\n" + raw).digest()
    assert hash_hex == digest[:4].hex()
    assert parse_verifier_key(VKEY) == (name, int(hash_hex, 16), raw[1:])


@pytest.mark.parametrize("name", ["", "a+b", "has space", "tab\there", "nl\n", "nbsp\u00a0"])
def test_verifier_key_bad_names(name: str) -> None:
    with pytest.raises(MalformedNoteError):
        verifier_key(name, KEY.public_key())


def test_verifier_key_bad_hex() -> None:
    name, kh, _ = parse_verifier_key(VKEY)
    tail = VKEY.split("+", 2)[2]
    h = f"{kh:08x}"
    # int(x, 16) would accept all of these; a key ID has exactly one spelling per case.
    for hex8 in ["0x" + h[2:], " " + h[1:], h[:4] + "_" + h[5:], "+" + h[1:], h[1:], h + "0"]:
        with pytest.raises(MalformedNoteError):
            parse_verifier_key(f"{name}+{hex8}+{tail}")
    assert parse_verifier_key(f"{name}+{h.upper()}+{tail}")[1] == kh  # as Go's ParseUint


def test_checkpoint_body_format() -> None:
    body = checkpoint_body(CP)
    assert body == f"auditledger/acme-gmbh\n10\n{base64.b64encode(CP.root).decode()}\n"
    assert parse_checkpoint_body(body) == CP
    ext = Checkpoint("auditledger/x", 0, EMPTY_ROOT, ("— wit 123", "ext two"))
    assert checkpoint_body(ext).endswith("\n— wit 123\next two\n")
    assert parse_checkpoint_body(checkpoint_body(ext)) == ext


def test_round_trip() -> None:
    note = sign_checkpoint(CP, "auditledger", KEY)
    body, sig_line = note.split("\n\n")
    assert body + "\n" == checkpoint_body(CP)
    assert sig_line.startswith("\u2014 auditledger ")
    assert sig_line.endswith("\n") and sig_line.count("\n") == 1
    raw = base64.b64decode(sig_line.split(" ")[2])
    assert raw[:4] == bytes.fromhex(VKEY.split("+")[1]) and len(raw) == 68
    assert open_checkpoint(note, [VKEY]) == CP
    assert open_checkpoint(note, [OTHER_VKEY, VKEY], origin="auditledger/acme-gmbh") == CP


@settings(max_examples=50, deadline=None)
@given(
    origin=st.text(
        st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40
    ).filter(lambda s: "\n" not in s),
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    exts=st.lists(st.text("abc xyz—+/=", min_size=1, max_size=10), max_size=3),
)
def test_round_trip_property(origin: str, size: int, root: bytes, exts: list[str]) -> None:
    cp = Checkpoint(origin, size, root, tuple(exts))
    assert open_checkpoint(sign_checkpoint(cp, "auditledger", KEY), [VKEY]) == cp


def _tamper_body(note: str) -> str:
    return note.replace("\n10\n", "\n11\n", 1)


def _tamper_root(note: str) -> str:
    b64 = base64.b64encode(CP.root).decode()
    other = base64.b64encode(bytes([CP.root[0] ^ 1]) + CP.root[1:]).decode()
    return note.replace(b64, other, 1)


def _tamper_sig(note: str) -> str:
    head, sig = note.rsplit(" ", 1)
    raw = bytearray(base64.b64decode(sig))
    raw[10] ^= 0x01
    return f"{head} {base64.b64encode(bytes(raw)).decode()}\n"


def _tamper_origin(note: str) -> str:
    return note.replace("acme-gmbh", "acme-gmbj", 1)


def _drop_blank_line(note: str) -> str:
    return note.replace("\n\n", "\n", 1)


def _ascii_dash(note: str) -> str:
    return note.replace("\u2014 ", "-- ", 1)


def _keyhash_swapped(note: str) -> str:
    """Signature relabelled with a different key hash: now an unknown key."""
    head, sig = note.rsplit(" ", 1)
    raw = base64.b64decode(sig)
    relabelled = base64.b64encode(bytes(4) + raw[4:]).decode()
    return f"{head} {relabelled}\n"


def _unsigned(note: str) -> str:
    return note.split("\n\n")[0] + "\n"


TAMPERS: dict[str, tuple[Callable[[str], str], type[NoteError]]] = {
    "size changed": (_tamper_body, InvalidSignatureError),
    "root changed": (_tamper_root, InvalidSignatureError),
    "origin changed": (_tamper_origin, InvalidSignatureError),
    "signature bit flipped": (_tamper_sig, InvalidSignatureError),
    "size with leading zero": (lambda n: n.replace("\n10\n", "\n010\n"), InvalidSignatureError),
    "missing blank line": (_drop_blank_line, MalformedNoteError),
    "ascii dash": (_ascii_dash, MalformedNoteError),
    "unsigned": (_unsigned, MalformedNoteError),
    "no final newline": (lambda n: n[:-1], MalformedNoteError),
    "trailing blank line": (lambda n: n + "\n", MalformedNoteError),
    "crlf": (lambda n: n.replace("\n", "\r\n"), MalformedNoteError),
    "key hash relabelled": (_keyhash_swapped, UnverifiedNoteError),
    "signer renamed": (
        lambda n: n.replace("— auditledger", "— auditledgers"),
        UnverifiedNoteError,
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_tampered_notes_rejected(case: str) -> None:
    tamper, error = TAMPERS[case]
    note = sign_checkpoint(CP, "auditledger", KEY)
    assert open_checkpoint(note, [VKEY]) == CP
    with pytest.raises(error):
        open_checkpoint(tamper(note), [VKEY])


def test_unknown_key() -> None:
    note = sign_checkpoint(CP, "auditledger", KEY)
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(note, [OTHER_VKEY])
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(note, [])
    with pytest.raises(MalformedNoteError):
        open_checkpoint(note, ["not a key"])


def test_extra_signatures() -> None:
    note = sign_checkpoint(CP, "auditledger", KEY)
    witness = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"witness").digest())
    wsig = sign_note(checkpoint_body(CP), "witness.example", witness).split("\n\n")[1]
    cosigned = note + wsig
    wkey = verifier_key("witness.example", witness.public_key())
    assert open_checkpoint(cosigned, [VKEY]) == CP
    assert open_checkpoint(cosigned, [wkey]) == CP
    # A bad signature by a known key rejects the note even if another signature is good.
    bad = note + _tamper_sig(wsig)
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(bad, [VKEY, wkey])


def test_wrong_origin() -> None:
    note = sign_checkpoint(CP, "auditledger", KEY)
    with pytest.raises(NoteError):
        open_checkpoint(note, [VKEY], origin="auditledger/other")


@pytest.mark.parametrize(
    "body",
    [
        "origin\n10\n",  # no root
        "origin\n+10\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
        "origin\n 10\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
        "origin\n1_0\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
        "origin\n18446744073709551616\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
        "origin\n10\n" + base64.b64encode(EMPTY_ROOT[:31]).decode() + "\n",
        "origin\n10\n" + base64.b64encode(EMPTY_ROOT).decode().rstrip("=") + "\n",
        "origin\n10\n" + base64.urlsafe_b64encode(b"\xff" * 32).decode() + "\n",
        "\n10\n" + base64.b64encode(EMPTY_ROOT).decode() + "\n",
    ],
)
def test_malformed_bodies(body: str) -> None:
    with pytest.raises(MalformedNoteError):
        parse_checkpoint_body(body)


def test_signed_malformed_body_is_rejected_after_verification() -> None:
    """A validly signed note whose text is not a checkpoint is still refused."""
    note = sign_note("hello\nworld\n", "auditledger", KEY)
    assert open_note(note, [VKEY]) == "hello\nworld\n"
    with pytest.raises(MalformedNoteError):
        open_checkpoint(note, [VKEY])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": "", "size": 1, "root": EMPTY_ROOT},
        {"origin": "a\nb", "size": 1, "root": EMPTY_ROOT},
        {"origin": "a", "size": -1, "root": EMPTY_ROOT},
        {"origin": "a", "size": 2**64, "root": EMPTY_ROOT},
        {"origin": "a", "size": True, "root": EMPTY_ROOT},
        {"origin": "a", "size": 1, "root": EMPTY_ROOT[:16]},
        {"origin": "a", "size": 1, "root": EMPTY_ROOT, "extensions": ("",)},
        {"origin": "a", "size": 1, "root": EMPTY_ROOT, "extensions": ("x\ny",)},
    ],
)
def test_invalid_checkpoints_cannot_be_built(kwargs: dict[str, object]) -> None:
    with pytest.raises(MalformedNoteError):
        Checkpoint(**kwargs)  # type: ignore[arg-type]


def test_sign_rejects_bad_text_and_name() -> None:
    for text in ["", "no newline", "a\n\nb\n", "\na\n", "tab\there\n"]:
        with pytest.raises(MalformedNoteError):
            sign_note(text, "auditledger", KEY)
    with pytest.raises(MalformedNoteError):
        sign_checkpoint(CP, "bad name", KEY)


def test_errors_are_value_errors() -> None:
    for cls in (MalformedNoteError, InvalidSignatureError, UnverifiedNoteError):
        assert issubclass(cls, NoteError) and issubclass(cls, ValueError)
