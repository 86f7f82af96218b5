"""Auditor memory: ``auditledger verify --url`` and ``verify BUNDLE --state``.

A signed checkpoint proves that the log key signed it, not that the ledger shows the same
history to everyone over time. An auditor who remembers the last checkpoint it verified
and, on the next visit, demands an RFC 9162 consistency proof from it to the new one
catches a rewritten history (a fork) or a shrunk one (a rollback) the moment it is shown
one. This module keeps that memory and makes those checks; the CLI prints the outcome.

State (one JSON file, ``default_state_file()`` or ``--state FILE``), per log origin::

    {"format": "auditledger-auditor-state/1",
     "logs": {"auditledger/<controller>": {
         "log_key": "<verifier key the checkpoints were verified with>",
         "checkpoints": [{"size", "root", "note", "source", "seen_at"}, ...]}}}

After a live visit a log has one remembered checkpoint, the one just verified. A bundle
verified with ``--state`` adds the bundle's newest checkpoint when it cannot be linked to
the remembered ones offline (no checkpoint of equal size to compare with); the next live
visit then proves every remembered checkpoint consistent with the live head and keeps only
that head. The file is replaced atomically and only after a successful check: a failed
audit never moves the memory forward.

Log key: ``--log-key`` pins it. Without it, the key remembered for the origin is used; on
the very first visit the key the ledger announces is trusted on first use and a warning
says so (docs/witnesses.md). A checkpoint not signed by the remembered key fails.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from ledger.checkpoint import Checkpoint, NoteError, open_checkpoint
from ledger.encoding import EncodingError, b64, unb64
from ledger.merkle import ProofError, verify_consistency
from ledger.sequencer import origin as log_origin
from ledger.witness import check_quorum

STATE_FORMAT = "auditledger-auditor-state/1"

__all__ = ["AuditFailed", "AuditUnavailable", "State", "audit_bundle", "audit_url",
           "default_state_file"]


class AuditFailed(Exception):
    """The ledger showed something that does not verify: a fork, a rollback, a bad
    signature, too few cosignatures. Exit status 1. ``code`` names the problem as the
    ``verify --json`` problems do: ``fork``, ``rollback``, ``bad_checkpoint``,
    ``witness_quorum``, ``bad_proof``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AuditUnavailable(Exception):
    """The audit could not be made (no answer, bad credentials, unreadable state): exit
    status 2, the memory is left as it was."""


def default_state_file() -> Path:
    """``$XDG_STATE_HOME/auditledger/checkpoints.json`` (``~/.local/state`` by default)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "auditledger" / "checkpoints.json"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Seen:
    """A checkpoint the auditor verified: size, root, the signed note, where from."""

    size: int
    root: bytes
    note: str
    source: str
    seen_at: str = field(default_factory=_now)

    def name(self) -> str:
        return f"size {self.size} root {b64(self.root)} (from {self.source}, {self.seen_at})"

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "root": b64(self.root), "note": self.note,
                "source": self.source, "seen_at": self.seen_at}


class State:
    """The remembered checkpoints of every log, in one file (``path`` None: in memory
    only, for a check that must remember nothing)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.logs: dict[str, dict[str, Any]] = {}
        if path is not None and path.exists():
            try:
                doc = orjson.loads(path.read_bytes())
                if doc.get("format") != STATE_FORMAT:
                    raise ValueError(f"format is not {STATE_FORMAT}")
                self.logs = doc["logs"]
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise AuditUnavailable(f"state file {path} cannot be read: {exc}") from None

    def log_key(self, origin: str) -> str | None:
        return (self.logs.get(origin) or {}).get("log_key")

    def remembered(self, origin: str) -> list[Seen]:
        try:
            return [Seen(c["size"], unb64(c["root"]), c["note"], c["source"], c["seen_at"])
                    for c in (self.logs.get(origin) or {}).get("checkpoints", [])]
        except (KeyError, TypeError, EncodingError) as exc:
            raise AuditUnavailable(f"state file {self.path}: {origin}: {exc}") from None

    def remember(self, origin: str, log_key: str, seen: Sequence[Seen]) -> None:
        self.logs[origin] = {"log_key": log_key,
                             "checkpoints": [s.to_dict() for s in sorted(
                                 seen, key=lambda s: s.size)]}

    def save(self) -> None:
        """Write a new file beside the old one, fsync, rename: never half a state."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = orjson.dumps({"format": STATE_FORMAT, "logs": self.logs},
                            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _pick_keys(state: State, origin: str, pinned: Sequence[str] | None,
               announced: str | None) -> tuple[list[str], str]:
    """(keys to verify with, how they were chosen: pinned | remembered | first use)."""
    if pinned:
        return list(pinned), "pinned"
    remembered = state.log_key(origin)
    if remembered:
        return [remembered], "remembered"
    if not announced:
        raise AuditUnavailable("no --log-key given and the ledger announces none")
    return [announced], "first use"


def _open(note: str, keys: Sequence[str], origin: str, what: str) -> Checkpoint:
    try:
        return open_checkpoint(note, keys, origin=origin)
    except NoteError as exc:
        raise AuditFailed("bad_checkpoint", f"{what}: checkpoint does not verify with the log key: "
                          f"{exc}") from None


def _link(old: Seen, new: Seen, prove: Callable[[int, int], list[bytes]] | None) -> bool:
    """Check ``new`` against a remembered ``old``; True when shown consistent, False when
    it cannot be shown offline (no proof source). Raises ``AuditFailed`` on a fork or a
    rollback, naming both checkpoints."""
    if old.size > new.size:
        raise AuditFailed("rollback", f"rollback: {new.name()} is smaller than the remembered "
                          f"{old.name()}")
    if old.size == new.size:
        if old.root != new.root:
            raise AuditFailed("fork", f"fork: {new.name()} has the size of the remembered "
                              f"{old.name()} but another root")
        return True
    if prove is None:
        return False
    try:
        verify_consistency(old.size, new.size, old.root, new.root, prove(old.size, new.size))
    except ProofError as exc:
        raise AuditFailed("fork", f"fork: {new.name()} is not consistent with the remembered "
                          f"{old.name()} ({exc})") from None
    return True


def _quorum(note: str, witnesses: Sequence[str], quorum: int) -> list[str]:
    if not witnesses and not quorum:
        return []
    try:
        return [c.witness for c in check_quorum(note, witnesses, quorum)]
    except NoteError as exc:
        raise AuditFailed("witness_quorum", f"witnesses: {exc}") from None


# --------------------------------------------------------------------------- live audit


class _Api:
    def __init__(self, url: str, api_key: str, controller: str, timeout: float) -> None:
        self.base = f"{url.rstrip('/')}/v1/controllers/{controller}"
        self.http = httpx.Client(timeout=timeout,
                                 headers={"Authorization": f"Bearer {api_key}"})

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        try:
            r = self.http.get(self.base + path, params=params)
        except httpx.HTTPError as exc:
            raise AuditUnavailable(f"{self.base}{path}: {type(exc).__name__}: {exc}") from None
        try:
            doc = r.json()
        except ValueError:
            doc = None
        if r.status_code != 200 or not isinstance(doc, dict):
            detail = (f"{doc.get('code')}: {doc.get('detail')}" if isinstance(doc, dict)
                      else r.text[:120])
            raise AuditUnavailable(f"GET {self.base}{path}: HTTP {r.status_code}: {detail}")
        return doc

    def consistency(self, old: int, new: int) -> list[bytes]:
        doc = self.get("/proofs/consistency", **{"from": old, "to": new})
        try:
            return [unb64(h) for h in doc["proof"]]
        except (KeyError, TypeError, EncodingError) as exc:
            raise AuditFailed("bad_proof",
                              f"consistency proof {old}->{new} is malformed: {exc}") from None

    def close(self) -> None:
        self.http.close()


def audit_url(url: str, api_key: str, controller: str, state: State, *,
              log_keys: Sequence[str] | None = None, witnesses: Sequence[str] = (),
              quorum: int = 0, timeout: float = 30.0,
              warn: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Verify the live ledger's newest checkpoint against what ``state`` remembers for
    this log, then remember it. With ``witnesses``/``quorum`` the checkpoint taken is the
    newest cosigned one and needs ``quorum`` valid cosignatures from those keys."""
    origin = log_origin(controller)
    api = _Api(url, api_key, controller, timeout)
    try:
        try:
            doc = api.get("/checkpoint/cosigned" if quorum else "/checkpoint")
        except AuditUnavailable as exc:
            if quorum and "no_cosigned_checkpoint" in str(exc):
                raise AuditFailed("witness_quorum", f"{url}: {exc}") from None
            raise
        note = doc.get("note")
        if not isinstance(note, str):
            raise AuditFailed("bad_checkpoint", f"{url}: the checkpoint answer holds no note")
        keys, how = _pick_keys(state, origin, log_keys, doc.get("log_key"))
        if how == "first use":
            warn(f"trusting the log key {keys[0]} on first use (pin it with --log-key)")
        cp = _open(note, keys, origin, url)
        cosigned = _quorum(note, witnesses, quorum)
        new = Seen(cp.size, cp.root, note, url)
        previous = state.remembered(origin)
        for old in previous:
            _link(old, new, api.consistency)
    finally:
        api.close()
    state.remember(origin, keys[0], [new])
    state.save()
    return {"ok": True, "controllers": {controller: {"size": cp.size, "root": b64(cp.root)}},
            "problems": [],
            "controller": controller, "origin": origin, "size": cp.size,
            "root": b64(cp.root), "log_key": how, "cosigned_by": cosigned,
            "previous": [{"size": s.size, "root": b64(s.root)} for s in previous],
            "state": str(state.path) if state.path else None}


# --------------------------------------------------------------------------- bundles


def audit_bundle(controller: str, notes: Sequence[str], state: State, *,
                 source: str, log_keys: Sequence[str] | None = None,
                 announced: str | None = None, witnesses: Sequence[str] = (),
                 quorum: int = 0,
                 warn: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Check a bundle's checkpoints against the remembered ones, then remember.

    Requires a bundle that verified (``verify_source``): ``notes`` are its checkpoints,
    oldest first, shown consistent with one another, the last being the newest the
    ledger had signed when the bundle was made. A remembered checkpoint of the size of
    one of them must have its root (else: fork, naming both); the chain then speaks for
    it. One that no bundle checkpoint meets cannot be linked offline — the bundle may be
    older than the last visit — so it stays remembered beside the bundle's newest, and
    the next live visit (``audit_url``) proves both consistent with the live head.
    ``quorum`` is met by the newest checkpoint of the chain that carries it (reported as
    ``cosigned_size``): the chain is consistent, so every event below that size is
    witnessed; a bundle made right after a checkpoint was signed may have its newest
    checkpoint not yet cosigned."""
    origin = log_origin(controller)
    keys, how = _pick_keys(state, origin, log_keys, announced)
    if how == "first use":
        warn(f"trusting the bundle's log key {keys[0]} on first use (pin it with --log-key)")
    chain = [Seen(cp.size, cp.root, note, source) for note in notes
             for cp in [_open(note, keys, origin, source)]]
    if not chain:
        raise AuditFailed("bad_checkpoint",
                          f"{source}: no checkpoint to compare with the remembered ones")
    cosigned: list[str] = []
    cosigned_size = None
    if quorum:
        for seen in reversed(chain):
            try:
                cosigned = _quorum(seen.note, witnesses, quorum)
            except AuditFailed as exc:
                last = exc
                continue
            cosigned_size = seen.size
            break
        else:
            raise AuditFailed("witness_quorum", f"{source}: no checkpoint with the quorum: {last}")
    by_size = {s.size: s for s in chain}
    newest = chain[-1]
    keep: list[Seen] = []
    linked = []
    for old in state.remembered(origin):
        twin = by_size.get(old.size)
        if twin is None:
            keep.append(old)
            continue
        _link(old, twin, None)  # equal sizes: equal roots, or a fork
        linked.append(old.size)
    keep.append(newest)
    state.remember(origin, keys[0], keep)
    state.save()
    return {"ok": True, "controller": controller, "origin": origin, "size": newest.size,
            "root": b64(newest.root), "log_key": how, "cosigned_by": cosigned,
            "cosigned_size": cosigned_size, "linked": linked,
            "unlinked": [{"size": s.size, "root": b64(s.root)} for s in keep[:-1]],
            "state": str(state.path) if state.path else None}
