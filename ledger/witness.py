"""Witnessing: C2SP ``tlog-witness`` client and C2SP ``tlog-cosignature`` (Ed25519, v1).

Why: a log key alone cannot stop a ledger from showing one history to one auditor and
another history to another (a split view). A witness keeps the newest checkpoint it has
seen for each log and cosigns a new one only with a valid consistency proof from it, so
a checkpoint with a quorum of cosignatures from independent witnesses is one that no
other, inconsistent checkpoint could also have collected (docs/witnesses.md).

What is here:
- cosigner verifier keys (``name+<key id>+base64(0x04 || Ed25519 key)``), cosignature
  lines (``— name base64(key id || u64 timestamp || signature)``) and their check over
  ``cosignature/v1\\ntime <t>\\n`` + the checkpoint body; ``check_quorum`` for verifiers;
- ``WitnessClient.add_checkpoint``: ``POST <witness>/add-checkpoint`` with ``old <size>``,
  the proof lines, a blank line and the signed checkpoint; a 409 names the witness's size
  and the request is made again from it;
- ``Witnessing``: the background job in ``serve`` that sends each controller's newest
  checkpoint to every configured witness and stores the cosignatures beside it
  (``Log.add_cosignatures``). It never holds the ingest lock while it talks to a witness.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import stamina
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.checkpoint import (
    MAX_SIGNATURES,
    SIG_PREFIX,
    MalformedNoteError,
    NoteError,
    _unb64,
    _valid_name,
)
from ledger.log.base import Log
from ledger.merkle import consistency_proof

__all__ = [
    "ALG_COSIGNATURE_V1",
    "Cosignature",
    "Cosigner",
    "QuorumError",
    "WitnessClient",
    "WitnessRefused",
    "WitnessUnavailable",
    "Witnessing",
    "add_checkpoint_request",
    "check_quorum",
    "cosign",
    "cosigner_key",
    "parse_cosigner_key",
    "split_note",
    "verified_cosignatures",
]

ALG_COSIGNATURE_V1 = 0x04  # C2SP tlog-cosignature: Ed25519 cosignature/v1
MAX_PROOF_LINES = 63  # tlog-witness: a client MUST NOT send more
_MAX_TIMESTAMP = 2**63 - 1

log = logging.getLogger(__name__)


class WitnessError(Exception):
    """A witness could not cosign (base class)."""


class WitnessRefused(WitnessError):
    """The witness answered and said no (403, 404, 409 it cannot resolve, 422 …), or its
    answer held no valid cosignature: retrying the same request will not help."""

    def __init__(self, witness: str, status: int, detail: str) -> None:
        super().__init__(f"witness {witness} refused (HTTP {status}): {detail}")
        self.witness, self.status, self.detail = witness, status, detail


class WitnessUnavailable(WitnessError):
    """No answer, or a 5xx: worth retrying later."""


class QuorumError(NoteError):
    """Fewer valid cosignatures from the given witnesses than the quorum asks."""


# --------------------------------------------------------------------------- keys and lines


def _key_id(name: str, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ALG_COSIGNATURE_V1]) + public_key)
    return int.from_bytes(digest.digest()[:4], "big")


@dataclass(frozen=True)
class Cosigner:
    """One witness as a verifier knows it: name, key id and Ed25519 public key."""

    name: str
    key_id: int
    public_key: bytes

    @property
    def vkey(self) -> str:
        return cosigner_key(self.name, self.public_key)


def cosigner_key(name: str, public_key: bytes | Ed25519PublicKey) -> str:
    """``<name>+<8 hex key id>+base64(0x04 || pk)``: the witness's verifier key."""
    if isinstance(public_key, Ed25519PublicKey):
        public_key = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    if not _valid_name(name) or len(public_key) != 32:
        raise MalformedNoteError("cosigner key needs a valid name and a 32-byte Ed25519 key")
    raw = base64.b64encode(bytes([ALG_COSIGNATURE_V1]) + public_key).decode()
    return f"{name}+{_key_id(name, public_key):08x}+{raw}"


def parse_cosigner_key(vkey: str) -> Cosigner:
    """Check a witness verifier key: type 0x04 and a key id that matches name and key (a
    log key, type 0x01, is refused: a log signature is not a cosignature)."""
    parts = vkey.split("+", 2) if isinstance(vkey, str) else []
    if len(parts) != 3 or not _valid_name(parts[0]) or len(parts[1]) != 8:
        raise MalformedNoteError(f"witness key must be name+keyid+key: {vkey!r}")
    name, hex8, key64 = parts
    raw = _unb64(key64, "witness key")
    if len(raw) != 33 or raw[0] != ALG_COSIGNATURE_V1:
        raise MalformedNoteError(f"witness key {name} is not an Ed25519 cosigner (0x04) key")
    try:
        declared = int(hex8, 16)
    except ValueError:
        raise MalformedNoteError(f"witness key {name}: key id is not hex") from None
    if declared != _key_id(name, raw[1:]):
        raise MalformedNoteError(f"witness key {name}: key id does not match name and key")
    return Cosigner(name, declared, raw[1:])


def _message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


def cosign(body: str, name: str, key: Ed25519PrivateKey, timestamp: int) -> str:
    """A cosignature line over checkpoint ``body`` (what a witness returns). The ledger
    never cosigns its own checkpoints; tests and tools use this to make known answers."""
    pk = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    sig = key.sign(_message(body, timestamp))
    raw = _key_id(name, pk).to_bytes(4, "big") + timestamp.to_bytes(8, "big") + sig
    return f"{SIG_PREFIX}{name} {base64.b64encode(raw).decode()}\n"


@dataclass(frozen=True)
class Cosignature:
    """A verified cosignature: by whom, when (POSIX seconds) and its line (with newline)."""

    witness: str
    timestamp: int
    line: str


def split_note(note: str) -> tuple[str, list[str]]:
    """(body with its final newline, signature lines each with its newline)."""
    if not isinstance(note, str) or not note.endswith("\n"):
        raise MalformedNoteError("note must end with a newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    lines = [line + "\n" for line in note[split + 2 : -1].split("\n")]
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError("too many signatures")
    return note[: split + 1], lines


def _verify_line(body: str, line: str, cosigner: Cosigner) -> Cosignature | None:
    """The cosignature if ``line`` is ``cosigner``'s (None when it is someone else's);
    raises when it claims to be theirs and does not verify."""
    text = line[:-1] if line.endswith("\n") else line
    if not text.startswith(SIG_PREFIX):
        raise MalformedNoteError("signature line must start with '— '")
    name, sep, sig64 = text[len(SIG_PREFIX) :].partition(" ")
    if not sep or name != cosigner.name:
        return None
    raw = _unb64(sig64, "signature")
    if len(raw) < 4 or int.from_bytes(raw[:4], "big") != cosigner.key_id:
        return None
    if len(raw) != 4 + 8 + 64:
        raise MalformedNoteError(f"cosignature by {name}: not 76 bytes")
    timestamp = int.from_bytes(raw[4:12], "big")
    if timestamp > _MAX_TIMESTAMP:
        raise MalformedNoteError(f"cosignature by {name}: timestamp out of range")
    try:
        Ed25519PublicKey.from_public_bytes(cosigner.public_key).verify(
            raw[12:], _message(body, timestamp))
    except InvalidSignature:
        raise NoteError(f"cosignature by {name} does not verify") from None
    return Cosignature(name, timestamp, text + "\n")


def verified_cosignatures(note: str, witness_keys: Sequence[str]) -> list[Cosignature]:
    """Every valid cosignature in ``note`` by one of ``witness_keys`` (one per witness).
    Lines by other keys are ignored, as the spec requires; a line by a given witness
    that does not verify raises (the note was altered)."""
    body, lines = split_note(note)
    cosigners = [parse_cosigner_key(k) for k in witness_keys]
    found: dict[str, Cosignature] = {}
    for line in lines:
        for c in cosigners:
            cs = _verify_line(body, line, c)
            if cs is not None:
                found.setdefault(c.vkey, cs)
    return list(found.values())


def check_quorum(note: str, witness_keys: Sequence[str], quorum: int) -> list[Cosignature]:
    """The note's valid cosignatures by distinct given witnesses; raises ``QuorumError``
    when there are fewer than ``quorum``. Check the log's own signature separately."""
    if quorum < 0 or quorum > len(set(witness_keys)):
        raise ValueError(f"quorum {quorum} needs that many distinct --witness keys "
                         f"(got {len(set(witness_keys))})")
    good = verified_cosignatures(note, witness_keys)
    if len(good) < quorum:
        names = ", ".join(c.witness for c in good) or "none"
        raise QuorumError(f"{len(good)} of {quorum} required cosignatures ({names})")
    return good


# --------------------------------------------------------------------------- the protocol


def add_checkpoint_request(old_size: int, proof: Sequence[bytes], note: str) -> bytes:
    """The ``add-checkpoint`` body: ``old N``, one base64 hash per line, blank, note."""
    if len(proof) > MAX_PROOF_LINES:
        raise ValueError("a consistency proof has at most 63 hashes")
    head = [f"old {old_size}", *(base64.b64encode(h).decode() for h in proof)]
    return ("\n".join(head) + "\n\n" + note).encode()


class WitnessClient:
    """One witness: its submission URL prefix and verifier key."""

    def __init__(self, url: str, vkey: str, http: httpx.Client | None = None,
                 timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.cosigner = parse_cosigner_key(vkey)
        self.vkey = vkey
        self.http = http or httpx.Client(timeout=timeout)

    @property
    def name(self) -> str:
        return self.cosigner.name

    def add_checkpoint(self, note: str, size: int, prove: Callable[[int], list[bytes]],
                       old_size: int = 0) -> tuple[list[str], int]:
        """Ask for a cosignature on ``note`` (a checkpoint of ``size`` leaves), proving
        consistency from ``old_size`` with ``prove(old)``. Returns (the cosignature lines
        by this witness, the old size that worked). A 409 gives the witness's size: once
        more from there. Raises ``WitnessRefused`` or ``WitnessUnavailable``."""
        for _ in range(3):  # first guess, the witness's size, then a plain conflict
            if old_size > size:
                raise WitnessRefused(self.name, 409, f"the witness has cosigned size "
                                     f"{old_size}, larger than this checkpoint's {size} "
                                     "(a rollback, or another history under this origin)")
            body = add_checkpoint_request(old_size, prove(old_size), note)
            try:
                r = self.http.post(f"{self.url}/add-checkpoint", content=body)
            except httpx.HTTPError as exc:
                raise WitnessUnavailable(f"witness {self.name}: {type(exc).__name__}: "
                                         f"{exc}") from None
            if r.status_code >= 500:
                raise WitnessUnavailable(f"witness {self.name}: HTTP {r.status_code}")
            text = r.text.strip().splitlines()[0] if r.text.strip() else ""
            if r.status_code == 409 and r.headers.get("content-type", "").startswith(
                    "text/x.tlog.size"):
                try:
                    known = int(text)
                except ValueError:
                    raise WitnessRefused(self.name, 409, f"bad size {text!r}") from None
                if known == old_size:
                    raise WitnessRefused(self.name, 409, f"size {known} with another root")
                old_size = known
                continue
            if r.status_code != 200:
                raise WitnessRefused(self.name, r.status_code, text or r.reason_phrase)
            lines = self._own_lines(note, r.text)
            if not lines:
                raise WitnessRefused(self.name, 200, "no valid cosignature by its key")
            return lines, old_size
        raise WitnessRefused(self.name, 409, "size conflict not resolved")

    def _own_lines(self, note: str, answer: str) -> list[str]:
        """The answer's lines that are valid cosignatures by this witness over ``note``."""
        body, _ = split_note(note)
        out = []
        for line in answer.splitlines():
            try:
                cs = _verify_line(body, line + "\n", self.cosigner)
            except NoteError:
                cs = None
            if cs is not None:
                out.append(cs.line)
        return out

    def close(self) -> None:
        self.http.close()


# --------------------------------------------------------------------------- the sender


@dataclass
class _WitnessState:
    """What ``/readyz`` and ``/metrics`` show of one witness."""

    url: str
    name: str
    cosigned: dict[str, int]  # controller -> newest size it cosigned for us
    failures: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_ok_at: float | None = None


class Witnessing:
    """Send each controller's newest checkpoint to every configured witness; store the
    cosignatures with ``Log.add_cosignatures``.

    ``step()`` is run by a ticker beside the checkpoint timer. A transient failure (no
    answer, 5xx) is retried with stamina's backoff within the step; a refusal is not
    retried until a newer checkpoint exists. Either is counted and shown in ``status()``.
    """

    def __init__(self, log_: Log, witnesses: Sequence[dict[str, str]],
                 http: httpx.Client | None = None, retry_timeout: float = 10.0) -> None:
        self.log = log_
        self.http = http or httpx.Client(timeout=10.0)
        self.clients = [WitnessClient(w["url"], w["vkey"], self.http) for w in witnesses]
        self.state = {c.url: _WitnessState(c.url, c.name, {}) for c in self.clients}
        self._tried: dict[tuple[str, str], int] = {}  # refused sizes: not again
        self.retry_timeout = retry_timeout
        self._lock = threading.Lock()

    def step(self) -> int:
        """One round over every controller and witness; returns how many cosigned."""
        done = 0
        # A per-partition Kafka ledger: each sequencer gets its own controllers cosigned
        # (the cosignatures go in its partition's transaction).
        ours = getattr(self.log, "sequences_controller", None)
        for controller in self.log.controllers():
            if ours is not None and not ours(controller):
                continue
            cp = self.log.latest_checkpoint(controller)
            if cp is None:
                continue
            for client in self.clients:
                st = self.state[client.url]
                key = (client.url, controller)
                if st.cosigned.get(controller) == cp.size or self._tried.get(key) == cp.size:
                    continue
                outcome = self._send(client, st, controller, cp.note, cp.size)
                if outcome == "cosigned":
                    done += 1
                elif outcome == "refused":
                    self._tried[key] = cp.size
        return done

    def _send(self, client: WitnessClient, st: _WitnessState, controller: str,
              note: str, size: int) -> str:
        """``cosigned``, ``refused`` (not tried again for this size) or ``unavailable``."""
        getter = self.log.node_getter(controller)

        def prove(old: int) -> list[bytes]:
            return consistency_proof(getter, old, size) if 0 < old <= size else []

        try:
            for attempt in stamina.retry_context(on=WitnessUnavailable, attempts=5,
                                                 timeout=self.retry_timeout):
                with attempt:
                    lines, _ = client.add_checkpoint(note, size, prove,
                                                     st.cosigned.get(controller, 0))
        except WitnessError as exc:
            with self._lock:
                st.failures += 1
                st.last_error, st.last_error_at = str(exc), time.time()
            log.warning("%s", exc)
            return "refused" if isinstance(exc, WitnessRefused) else "unavailable"
        self.log.add_cosignatures(controller, size, lines)
        with self._lock:
            st.cosigned[controller] = size
            st.last_ok_at = time.time()
            st.last_error = None
        return "cosigned"

    def status(self) -> list[dict[str, Any]]:
        """Per witness: url, name, cosigned sizes, failures, last error (``/readyz``)."""
        with self._lock:
            return [{"url": s.url, "name": s.name, "cosigned": dict(s.cosigned),
                     "failures": s.failures, "last_error": s.last_error,
                     "ok": s.last_error is None} for s in self.state.values()]

    def close(self) -> None:
        self.http.close()
