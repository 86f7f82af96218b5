"""Signed checkpoints: C2SP ``tlog-checkpoint`` bodies inside C2SP ``signed-note`` notes.

A checkpoint commits the log to (origin, size, root). It is published as a signed note so
that standard tooling (golang.org/x/mod/sumdb/note, transparency-dev, witnesses) can check
it with nothing but the ledger's verifier key::

    auditledger/acme
    1234
    <base64 root>

    — auditledger <base64(key hash || Ed25519 signature)>

Only Ed25519 (signature type 0x01) is supported. Parsing is strict — canonical base64,
decimal sizes without leading zeros — so one checkpoint has exactly one text form and a
signature over it cannot be re-wrapped into a different-looking but equal checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.merkle import HASH_SIZE

__all__ = [
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "TIME_EXTENSION",
    "Checkpoint",
    "InvalidSignatureError",
    "MalformedNoteError",
    "NoteError",
    "UnverifiedNoteError",
    "checkpoint_body",
    "checkpoint_time",
    "key_hash",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint_body",
    "parse_verifier_key",
    "sign_checkpoint",
    "sign_note",
    "verifier_key",
]

ALG_ED25519 = 0x01
MAX_SIGNATURES = 100  # as golang.org/x/mod/sumdb/note: bounds work on hostile input
SIG_PREFIX = "— "  # U+2014 EM DASH, then a space
_MAX_SIZE = 2**64 - 1  # tree sizes are uint64 in every other implementation

TIME_EXTENSION = "time "
"""Prefix of the checkpoint extension line carrying the signing time (RFC 3339 UTC, as
``ledger.clock.format_rfc3339``): the log key vouches for when it saw the tree this big,
which is what lets an evidence bundle choose and prove its period's edges."""

_HEX8 = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """A note, checkpoint or verifier key cannot be accepted."""


class MalformedNoteError(NoteError):
    """Syntax error: not a well-formed note, checkpoint body or key."""


class InvalidSignatureError(NoteError):
    """A signature by a *known* key does not verify: the note was altered or forged."""


class UnverifiedNoteError(NoteError):
    """Well-formed, but no signature is by any of the given keys (unsigned or unknown)."""


# --------------------------------------------------------------------------- helpers


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    """Strict standard base64: padded, canonical, so one value has one spelling."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise MalformedNoteError(f"{what}: invalid base64") from exc
    if _b64(raw) != text:
        raise MalformedNoteError(f"{what}: non-canonical base64")
    return raw


def _valid_name(name: str) -> bool:
    """Key names: non-empty, no Unicode space, no '+' (the verifier-key separator)."""
    return (
        isinstance(name, str)
        and name != ""
        and "+" not in name
        and not any(ch.isspace() or ord(ch) < 0x20 for ch in name)
    )


def _raw_public_key(public_key: bytes | Ed25519PublicKey) -> bytes:
    if isinstance(public_key, Ed25519PublicKey):
        return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return bytes(public_key)


def key_hash(name: str, public_key: bytes) -> int:
    """The 32-bit key ID of signed-note: SHA-256(name || "\\n" || 0x01 || pk)[:4], big-endian.

    It names the key in signature lines, so a verifier picks the right key without trying
    all of them; it is a hint, not a security property.
    """
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key)
    return int.from_bytes(digest.digest()[:4], "big")


# --------------------------------------------------------------------------- verifier keys


def verifier_key(name: str, public_key: bytes | Ed25519PublicKey) -> str:
    """``<name>+<8 hex key hash>+<base64(0x01 || pk)>``, as golang.org/x/mod/sumdb/note.

    Requires a valid key name (non-empty, no spaces, no '+') and a 32-byte Ed25519 key.
    """
    pk = _raw_public_key(public_key)
    if not _valid_name(name):
        raise MalformedNoteError(f"invalid key name {name!r}")
    if len(pk) != 32:
        raise MalformedNoteError("Ed25519 public key must be 32 bytes")
    return f"{name}+{key_hash(name, pk):08x}+{_b64(bytes([ALG_ED25519]) + pk)}"


def parse_verifier_key(vkey: str) -> tuple[str, int, bytes]:
    """Split and check a verifier key; returns (name, key hash, raw 32-byte public key).

    The key hash is recomputed and must match: a key whose name or bytes were altered
    must not be accepted under the old ID.
    """
    if not isinstance(vkey, str):
        raise MalformedNoteError("verifier key must be a str")
    parts = vkey.split("+", 2)  # base64 may contain "+", names may not
    if len(parts) != 3:
        raise MalformedNoteError("verifier key must be name+hash+key")
    name, hash16, key64 = parts
    if not _valid_name(name):
        raise MalformedNoteError(f"invalid key name {name!r}")
    if not _HEX8.fullmatch(hash16):
        raise MalformedNoteError("key hash must be 8 hex digits")
    raw = _unb64(key64, "verifier key")
    if len(raw) != 33 or raw[0] != ALG_ED25519:
        raise MalformedNoteError("verifier key is not an Ed25519 (0x01) key")
    pk = raw[1:]
    declared = int(hash16, 16)
    if key_hash(name, pk) != declared:
        raise MalformedNoteError("verifier key hash does not match name and key")
    return name, declared, pk


# --------------------------------------------------------------------------- signed notes


def _check_text(text: str) -> None:
    """Note text: UTF-8, newline-terminated, no other ASCII control characters; we also
    forbid blank lines so the text/signature split is unambiguous."""
    if not isinstance(text, str) or not text.endswith("\n") or "\n\n" in text:
        raise MalformedNoteError("note text must be non-empty lines each ending in newline")
    if text.startswith("\n"):
        raise MalformedNoteError("note text must not start with a blank line")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise MalformedNoteError("note text contains control characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedNoteError("note text is not valid UTF-8") from exc


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Signed note: ``text``, a blank line, one ``— name base64(keyhash || sig)`` line.

    Requires ``text`` to be newline-terminated with no blank lines or control characters;
    the signature covers the text's UTF-8 bytes including its final newline.
    """
    _check_text(text)
    if not _valid_name(name):
        raise MalformedNoteError(f"invalid key name {name!r}")
    pk = _raw_public_key(private_key.public_key())
    sig = private_key.sign(text.encode("utf-8"))
    kh = key_hash(name, pk).to_bytes(4, "big")
    return f"{text}\n{SIG_PREFIX}{name} {_b64(kh + sig)}\n"


def open_note(note: str, verifier_keys: Sequence[str]) -> str:
    """Verify a signed note and return its text (ending in a newline).

    Accepts when at least one signature is by a known key and every signature by a known
    key verifies — one bad signature by a trusted key means the note was tampered with, and
    other valid signatures do not excuse it. Signatures by unknown keys are ignored.
    Raises ``MalformedNoteError``, ``InvalidSignatureError`` or ``UnverifiedNoteError``.
    """
    keys: dict[tuple[str, int], list[bytes]] = {}
    for vkey in verifier_keys:
        name, kh, pk = parse_verifier_key(vkey)
        if pk not in keys.setdefault((name, kh), []):
            keys[(name, kh)].append(pk)

    if not isinstance(note, str) or not note.endswith("\n"):
        raise MalformedNoteError("note must end with a newline")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in note):
        raise MalformedNoteError("note contains control characters")
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    text, sig_block = note[: split + 1], note[split + 2 :]
    _check_text(text)

    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError("too many signatures")
    msg = text.encode("utf-8")
    verified = 0
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise MalformedNoteError("signature line must start with '— '")
        name, sep, sig64 = line[len(SIG_PREFIX) :].partition(" ")
        if not sep or not _valid_name(name):
            raise MalformedNoteError("malformed signature line")
        raw = _unb64(sig64, "signature")
        if len(raw) < 5:
            raise MalformedNoteError("signature too short")
        kh = int.from_bytes(raw[:4], "big")
        candidates = keys.get((name, kh))
        if candidates is None:
            continue
        if len(candidates) > 1:
            raise NoteError(f"ambiguous key {name}+{kh:08x}")
        try:
            Ed25519PublicKey.from_public_bytes(candidates[0]).verify(raw[4:], msg)
        except (InvalidSignature, ValueError) as exc:
            raise InvalidSignatureError(f"invalid signature for key {name}+{kh:08x}") from exc
        verified += 1
    if verified == 0:
        raise UnverifiedNoteError("note has no verifiable signatures")
    return text


# --------------------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: log ``origin`` (``auditledger/<controller>``), ``size`` leaves, ``root``.

    Validated on construction, so every ``Checkpoint`` has a well-formed body.
    """

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not self.origin:
            raise MalformedNoteError("checkpoint origin must be a non-empty str")
        if any(ord(ch) < 0x20 for ch in self.origin):
            raise MalformedNoteError("checkpoint origin contains control characters")
        if (
            not isinstance(self.size, int)
            or isinstance(self.size, bool)
            or not 0 <= self.size <= _MAX_SIZE
        ):
            raise MalformedNoteError("checkpoint size must be an int in [0, 2**64)")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise MalformedNoteError(f"checkpoint root must be {HASH_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise MalformedNoteError("checkpoint extensions must be a tuple")
        for ext in self.extensions:
            if not isinstance(ext, str) or not ext or any(ord(ch) < 0x20 for ch in ext):
                raise MalformedNoteError("extension lines must be non-empty single lines")


def checkpoint_body(cp: Checkpoint) -> str:
    """The note text: ``origin\\nsize\\n<base64 root>\\n`` then one line per extension."""
    lines = [cp.origin, str(cp.size), _b64(cp.root), *cp.extensions]
    return "".join(line + "\n" for line in lines)


def parse_checkpoint_body(text: str) -> Checkpoint:
    """Inverse of ``checkpoint_body``; strict, so ``checkpoint_body(parse(t)) == t``."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise MalformedNoteError("checkpoint body must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3 or any(line == "" for line in lines):
        raise MalformedNoteError("checkpoint needs origin, size and root lines, none empty")
    origin, size_s, root_s, *exts = lines
    if not _DECIMAL.fullmatch(size_s) or int(size_s) > _MAX_SIZE:
        raise MalformedNoteError("checkpoint size must be decimal without leading zeros")
    root = _unb64(root_s, "checkpoint root")
    return Checkpoint(origin, int(size_s), root, tuple(exts))


def sign_checkpoint(cp: Checkpoint, name: str, private_key: Ed25519PrivateKey) -> str:
    """The full signed note for ``cp``, signed as key ``name`` (``auditledger`` by default
    in deployments; must match the published verifier key's name)."""
    return sign_note(checkpoint_body(cp), name, private_key)


def open_checkpoint(
    note: str, verifier_keys: Sequence[str], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint note and parse its body.

    One log key signs every controller's checkpoints, so pass ``origin`` whenever the
    expected log is known: otherwise a genuine checkpoint of another controller's log is
    accepted too. Raises ``NoteError`` (subclasses as ``open_note``) on any failure.
    """
    cp = parse_checkpoint_body(open_note(note, verifier_keys))
    if origin is not None and cp.origin != origin:
        raise NoteError(f"checkpoint is for {cp.origin!r}, expected {origin!r}")
    return cp


def checkpoint_time(cp: Checkpoint) -> str | None:
    """The signed ``time`` extension of ``cp``, or None for an untimed checkpoint (one
    signed before the extension existed). Two ``time`` lines are malformed: which one
    would count is exactly the ambiguity a strict parser must refuse."""
    times = [ext[len(TIME_EXTENSION):] for ext in cp.extensions
             if ext.startswith(TIME_EXTENSION)]
    if len(times) > 1:
        raise MalformedNoteError("checkpoint has more than one time extension")
    return times[0] if times else None
