"""Evidence bundles: a zip an auditor verifies offline with ``auditledger verify``.

A bundle is a *subset* of one controller's log — the events of a period plus every
administration event (whose keys the signatures need) — so it is checked event by event
with inclusion proofs against its final signed checkpoint, not by recomputing the tree.

Members (every one listed with its SHA-256 in ``manifest.note``, which the log key signs,
so a changed byte anywhere is found and named)::

    manifest.note                  signed note: format, controller, tree size, member digests
    manifest.json                  what the bundle covers (period, counts, final checkpoint)
    keys/log.pub                   the log's signed-note verifier key(s)
    keys/producers.json            admin and producer public keys, as the admin events set them
    events.jsonl                   {"index","event_id","received_at","leaf_hash","event"}
                                   per line; ``event`` is the signed envelope (with ``sig``)
    checkpoints.jsonl              {"size","created_at","note"} per line, oldest first
    proofs/inclusion.jsonl         {"event_id","index","tree_size","proof"} per event
    proofs/consistency.jsonl       {"from","to","proof"} between consecutive checkpoints
    report/accountability.json     the accountability report (built by the read side)
    report/accountability.html     the same, for people
    README.txt                     how to verify

The manifest is signed with the log key as a signed note whose first line
(``auditledger-bundle/1``) can never parse as a checkpoint, so the one key serves both
without one signature standing in for the other.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.canonical import canonical_bytes
from ledger.checkpoint import NoteError, open_checkpoint, open_note, sign_note
from ledger.clock import format_rfc3339, parse_rfc3339
from ledger.encoding import EncodingError, b64, unb64
from ledger.findings import LogEntry, Problem, Report
from ledger.log.base import StoredCheckpoint, StoredEvent
from ledger.merkle import (
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from ledger.registry import ADMIN_TYPES, Registry, RegistryError
from ledger.schemas import SchemaError, default_schemas
from ledger.sequencer import origin
from ledger.signing import DOMAIN, load_private_key
from ledger.verifier import Verifier

FORMAT = "auditledger-bundle/1"
MANIFEST_NOTE = "manifest.note"
EVENTS = "events.jsonl"
CHECKPOINTS = "checkpoints.jsonl"
INCLUSION = "proofs/inclusion.jsonl"
CONSISTENCY = "proofs/consistency.jsonl"
PRODUCERS = "keys/producers.json"
LOG_KEYS = "keys/log.pub"
README = """auditledger evidence bundle ({format})

Verify offline, with only public keys:

    auditledger verify THIS.zip --log-key '<the log key you trust>'

Without --log-key the key in keys/log.pub is used: that proves the bundle is intact, not
that it comes from the ledger you trust. manifest.note lists the SHA-256 of every member
and is signed by the log key; each event in events.jsonl carries its producer's Ed25519
signature and an RFC 9162 inclusion proof (proofs/inclusion.jsonl) to the last checkpoint
in checkpoints.jsonl.
"""


class BundleError(ValueError):
    """A bundle cannot be built (e.g. no checkpoint yet) or read at all."""


# -- building ------------------------------------------------------------------------------


def _as_time(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_rfc3339(value + "T00:00:00Z" if len(value) == 10 else value)


def _in_range(ev: StoredEvent, start: datetime | None, end: datetime | None) -> bool:
    """Whether the event belongs in a period bundle. An event whose stored ``occurred_at``
    cannot be read (a log written before ingest checked times) cannot be shown to lie
    outside the period, so it is in every one: a bundle never hides evidence."""
    if start is None and end is None:
        return True
    try:
        at = parse_rfc3339(ev.occurred_at)
        return (start is None or at >= start) and (end is None or at < end)
    except (ValueError, OverflowError):
        return True


def _cached(get: Any, seed: dict[tuple[int, int], bytes]) -> Any:
    """A node getter that remembers: neighbouring events share most of their proof path."""
    cache = dict(seed)

    def cached(level: int, index: int) -> bytes:
        key = (level, index)
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = get(level, index)
        return hit

    return cached


def key_history(admin_envelopes: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """What ``keys/producers.json`` holds: each key change, in log order."""
    out: list[dict[str, Any]] = []
    for env in admin_envelopes:
        data = env["data"]
        entry: dict[str, Any] = {"type": env["type"], "event_id": env["event_id"],
                                 "occurred_at": env["occurred_at"]}
        if env["type"] == "controller.registered":
            entry["admin_public_key"] = data.get("admin_public_key")
        else:
            entry["producer_id"] = data.get("producer_id")
            for name in ("public_key", "types", "valid_from", "revoked_at"):
                if name in data:
                    entry[name] = data[name]
        out.append(entry)
    return out


def _default_report(controller: str, events: Sequence[StoredEvent]) -> tuple[bytes, bytes]:
    counts: dict[str, int] = {}
    for ev in events:
        counts[ev.type] = counts.get(ev.type, 0) + 1
    doc = {"controller": controller, "events_by_type": dict(sorted(counts.items()))}
    rows = "".join(f"<tr><td>{t}</td><td>{n}</td></tr>" for t, n in sorted(counts.items()))
    html = (f"<!doctype html><meta charset=utf-8><title>{controller}</title>"
            f"<h1>Events of {controller}</h1><table>{rows}</table>")
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2), html.encode()


def build_bundle(
    ledger_or_log: Any,
    controller: str,
    from_: str | datetime | None = None,
    to: str | datetime | None = None,
    report_json: bytes | None = None,
    report_html: bytes | None = None,
    *,
    signing_key: Ed25519PrivateKey | None = None,
    key_name: str = "auditledger",
    log_keys: Sequence[str] = (),
    now: datetime | None = None,
) -> bytes:
    """The zip for ``controller``'s events with ``from_ <= occurred_at < to``.

    Given a ``Ledger``, it signs a checkpoint first (so the bundle covers every event
    stored so far) and signs the manifest with the ledger's log key. Given a bare ``Log``,
    pass ``signing_key``/``key_name``/``log_keys``.
    """
    if hasattr(ledger_or_log, "cfg") and hasattr(ledger_or_log, "log"):
        ledger = ledger_or_log
        ledger.flush()
        log = ledger.log
        signing_key = signing_key or load_private_key(ledger.cfg.log_key_file)
        key_name = ledger.cfg.log_key_name
        log_keys = log_keys or [ledger.verifier_key]
        now = now or ledger.clock.now()
    else:
        log = ledger_or_log
    if signing_key is None or not log_keys:
        raise BundleError("building a bundle needs the log's signing key and verifier key")
    start, end = _as_time(from_), _as_time(to)
    final = log.latest_checkpoint(controller)
    if final is None:
        raise BundleError(f"controller {controller} has no signed checkpoint yet")
    size = final.size

    chosen: list[StoredEvent] = []
    admin: list[StoredEvent] = []
    for ev in log.events(controller=controller):
        if ev.index >= size:
            break
        if ev.type in ADMIN_TYPES:
            admin.append(ev)
            chosen.append(ev)
        elif _in_range(ev, start, end):
            chosen.append(ev)

    get = _cached(log.node_getter(controller), {(0, ev.index): ev.leaf_hash for ev in chosen})
    events_out, proofs_out = bytearray(), bytearray()
    for ev in chosen:
        events_out += (
            b'{"index":%d,"event_id":%s,"received_at":%s,"leaf_hash":%s,"event":%s}\n'
            % (ev.index, orjson.dumps(ev.event_id), orjson.dumps(ev.received_at),
               orjson.dumps(b64(ev.leaf_hash)), ev.body)
        )
        proof = [b64(h) for h in inclusion_proof(get, ev.index, size)]
        proofs_out += orjson.dumps({"event_id": ev.event_id, "index": ev.index,
                                    "tree_size": size, "proof": proof}) + b"\n"

    checkpoints = _pick_checkpoints(log.checkpoints(controller), final, start, end)
    cps_out = b"".join(
        orjson.dumps({"size": cp.size, "created_at": cp.created_at,
                      "note": cp.note + "".join(log.cosignatures(controller, cp.size))})
        + b"\n"
        for cp in checkpoints
    )
    cons_out = b"".join(
        orjson.dumps({"from": a.size, "to": b.size,
                      "proof": [b64(h) for h in consistency_proof(get, a.size, b.size)]})
        + b"\n"
        for a, b in itertools.pairwise(checkpoints)
    )
    if report_json is None or report_html is None:
        report_json, report_html = _default_report(controller, chosen)
    created = format_rfc3339(now) if now else None
    manifest = {
        "format": FORMAT, "controller": controller, "origin": origin(controller),
        "from": format_rfc3339(start) if start else None,
        "to": format_rfc3339(end) if end else None,
        "created_at": created, "tree_size": size, "root": b64(final.root),
        "events": len(chosen), "admin_events": len(admin), "checkpoints": len(checkpoints),
        "log_keys": list(log_keys),
    }
    members: dict[str, bytes] = {
        "README.txt": README.format(format=FORMAT).encode(),
        "manifest.json": orjson.dumps(manifest, option=orjson.OPT_INDENT_2),
        LOG_KEYS: "".join(k + "\n" for k in log_keys).encode(),
        PRODUCERS: orjson.dumps(key_history(ev.envelope() for ev in admin),
                                option=orjson.OPT_INDENT_2),
        EVENTS: bytes(events_out),
        CHECKPOINTS: cps_out,
        INCLUSION: bytes(proofs_out),
        CONSISTENCY: cons_out,
        "report/accountability.json": report_json,
        "report/accountability.html": report_html,
    }
    lines = [FORMAT, controller, str(size)]
    lines += [f"{hashlib.sha256(data).hexdigest()} {name}" for name, data in members.items()]
    members[MANIFEST_NOTE] = sign_note("".join(x + "\n" for x in lines), key_name,
                                       signing_key).encode()
    buf = io.BytesIO()
    stamp = (now.timetuple()[:6] if now else (1980, 1, 1, 0, 0, 0))
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for name in [MANIFEST_NOTE, *members.keys() - {MANIFEST_NOTE}]:
            zf.writestr(zipfile.ZipInfo(name, date_time=stamp), members[name],
                        compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def _pick_checkpoints(
    all_cps: list[StoredCheckpoint], final: StoredCheckpoint,
    start: datetime | None, end: datetime | None,
) -> list[StoredCheckpoint]:
    """The last checkpoint before the period (what an auditor may already hold), those
    signed during it, and the final one, oldest first."""
    picked: dict[int, StoredCheckpoint] = {}
    before: StoredCheckpoint | None = None
    for cp in all_cps:
        if cp.size == 0 or cp.size > final.size:
            continue
        at = parse_rfc3339(cp.created_at)
        if start is not None and at < start:
            before = cp
            continue
        if end is None or at < end:
            picked[cp.size] = cp
    if before is not None:
        picked[before.size] = before
    picked[final.size] = final
    return [picked[s] for s in sorted(picked)]


# -- reading and verifying -----------------------------------------------------------------


@dataclass
class _Event:
    line: int
    index: int
    event_id: str
    leaf_hash: bytes | None
    env: dict[str, Any]
    body: bytes


def _jsonl(data: bytes) -> Iterable[tuple[int, Any]]:
    for n, line in enumerate(data.split(b"\n"), 1):
        if line.strip():
            try:
                yield n, orjson.loads(line)
            except orjson.JSONDecodeError:
                yield n, None


class BundleSource:
    """An evidence bundle opened for verification (``ledger.findings.Source``)."""

    def __init__(self, path: Path | str | bytes) -> None:
        raw = path if isinstance(path, bytes) else Path(path).read_bytes()
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as zf:
                self.members = {name: zf.read(name) for name in zf.namelist()}
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
            raise BundleError(f"not an evidence bundle: {exc}") from None
        self.log_keys = [
            line.strip() for line in self.members.get(LOG_KEYS, b"").decode(
                "utf-8", "replace").splitlines() if line.strip()
        ]
        try:
            manifest = orjson.loads(self.members.get("manifest.json", b"{}"))
        except orjson.JSONDecodeError:
            manifest = {}
        self.manifest = manifest if isinstance(manifest, dict) else {}
        self.problems: list[Problem] = []
        self.controller = self._controller()
        self._events = self._read_events()
        self._read_problems = list(self.problems)

    def _controller(self) -> str:
        """From the signed manifest's second line (checked later), else manifest.json."""
        lines = self.members.get(MANIFEST_NOTE, b"").decode("utf-8", "replace").split("\n")
        if len(lines) > 2 and lines[0] == FORMAT:
            return lines[1]
        return str(self.manifest.get("controller") or "?")

    # -- Source ----------------------------------------------------------------------------

    def controllers(self) -> list[str]:
        return [self.controller]

    def entries(self, controller: str) -> Iterable[LogEntry]:
        for ev in self._events:
            yield LogEntry(ev.index, ev.event_id, ev.body, ev.leaf_hash)

    def checkpoints(self, controller: str) -> list[StoredCheckpoint]:
        out = []
        for _, doc in _jsonl(self.members.get(CHECKPOINTS, b"")):
            if isinstance(doc, dict) and isinstance(doc.get("note"), str):
                out.append(StoredCheckpoint(controller, int(doc.get("size") or 0), b"",
                                            doc["note"], str(doc.get("created_at"))))
        return out

    def stored_node(self, controller: str, level: int, index: int) -> bytes | None:
        return None  # a bundle holds no tree: its events are checked by inclusion proofs

    def close(self) -> None:
        pass

    # -- verification ----------------------------------------------------------------------

    def _add(self, problem: str, detail: str, event_id: str | None = None,
             index: int | None = None) -> None:
        self.problems.append(Problem(self.controller, problem, event_id, index, detail))

    def _read_events(self) -> list[_Event]:
        out: list[_Event] = []
        for n, doc in _jsonl(self.members.get(EVENTS, b"")):
            env = doc.get("event") if isinstance(doc, dict) else None
            if not isinstance(env, dict) or not isinstance(doc.get("index"), int):
                self._add("malformed_event", f"{EVENTS} line {n}: not an event record")
                continue
            try:
                recorded = unb64(doc["leaf_hash"], 32) if "leaf_hash" in doc else None
            except (EncodingError, TypeError):
                recorded = None
            out.append(_Event(n, doc["index"], str(doc.get("event_id")), recorded, env,
                              canonical_bytes(env)))
        out.sort(key=lambda e: e.index)
        return out

    def verify_report(self, log_keys: Sequence[str], verifier: Verifier | None = None
                      ) -> Report:
        """Everything the bundle claims, checked with ``log_keys`` only."""
        report = Report()
        self.problems = list(self._read_problems)
        self._check_manifest(log_keys)
        final = self._check_checkpoints(log_keys)
        own = verifier is None
        verifier = verifier or Verifier(0)
        try:
            self._check_events(final, verifier)
        finally:
            if own:
                verifier.close()
        report.problems = self.problems
        report.controllers[self.controller] = {
            "size": final[0] if final else 0,
            "root": b64(final[1]) if final else None,
            "checkpoints": len(self.checkpoints(self.controller)),
            "events": len(self._events),
        }
        return report

    def _check_manifest(self, log_keys: Sequence[str]) -> None:
        note = self.members.get(MANIFEST_NOTE)
        if note is None:
            self._add("bundle_manifest", f"{MANIFEST_NOTE} is missing")
            return
        try:
            text = open_note(note.decode("utf-8"), log_keys)
        except (NoteError, UnicodeDecodeError, ValueError) as exc:
            self._add("bundle_manifest", f"{MANIFEST_NOTE}: not signed by the log key: {exc}")
            return
        lines = text.rstrip("\n").split("\n")
        if lines[:2] != [FORMAT, self.controller] or len(lines) < 3:
            self._add("bundle_manifest",
                      f"{MANIFEST_NOTE}: not a {FORMAT} manifest for {self.controller}")
            return
        if str(self.manifest.get("tree_size")) != lines[2]:
            self._add("bundle_manifest", f"manifest.json: tree size differs from {MANIFEST_NOTE}")
        listed = set()
        for line in lines[3:]:
            digest, _, name = line.partition(" ")
            listed.add(name)
            data = self.members.get(name)
            if data is None:
                self._add("member_missing", f"{name}: listed in the manifest but absent")
            elif hashlib.sha256(data).hexdigest() != digest:
                self._add("member_altered", f"{name}: contents differ from the signed manifest")
        for name in sorted(set(self.members) - listed - {MANIFEST_NOTE}):
            self._add("member_unlisted", f"{name}: not listed in the signed manifest")

    def _check_checkpoints(self, log_keys: Sequence[str]) -> tuple[int, bytes] | None:
        opened: list[tuple[int, bytes]] = []
        for n, doc in _jsonl(self.members.get(CHECKPOINTS, b"")):
            note = doc.get("note") if isinstance(doc, dict) else None
            try:
                if not isinstance(note, str):
                    raise NoteError("not a checkpoint record")
                cp = open_checkpoint(note, log_keys, origin=origin(self.controller))
            except NoteError as exc:
                self._add("bad_checkpoint", f"{CHECKPOINTS} line {n}: {exc}")
                continue
            if doc.get("size") != cp.size:
                self._add("bad_checkpoint",
                          f"{CHECKPOINTS} line {n}: size field differs from the signed note")
            opened.append((cp.size, cp.root))
        opened.sort()
        if not opened:
            self._add("bad_checkpoint", f"{CHECKPOINTS}: no valid signed checkpoint")
            return None
        proofs: dict[tuple[int, int], Any] = {}
        for _, doc in _jsonl(self.members.get(CONSISTENCY, b"")):
            if isinstance(doc, dict):
                proofs[(doc.get("from"), doc.get("to"))] = doc.get("proof")  # type: ignore[index]
        for (m, old_root), (n, new_root) in itertools.pairwise(opened):
            where = f"{CONSISTENCY} {m} -> {n}"
            try:
                proof = proofs.get((m, n))
                if not isinstance(proof, list):
                    raise ProofError("no proof in the bundle")
                verify_consistency(m, n, old_root, new_root, [unb64(h, 32) for h in proof])
            except (ProofError, EncodingError, TypeError) as exc:
                self._add("checkpoint_fork", f"{where}: checkpoints not shown consistent: {exc}")
        final = opened[-1]
        if self.manifest.get("tree_size") != final[0]:
            self._add("bundle_manifest", "manifest.json: tree size is not the last checkpoint's")
        return final

    def _check_events(self, final: tuple[int, bytes] | None, verifier: Verifier) -> None:
        proofs: dict[str, dict[str, Any]] = {}
        for n, doc in _jsonl(self.members.get(INCLUSION, b"")):
            if isinstance(doc, dict) and isinstance(doc.get("event_id"), str):
                proofs[doc["event_id"]] = doc
            else:
                self._add("bad_inclusion_proof", f"{INCLUSION} line {n}: not a proof record")
        schemas, registry = default_schemas(), Registry()
        seen: set[str] = set()
        admin_envs: list[dict[str, Any]] = []
        pending: list[tuple[_Event, bytes, bytes, str]] = []
        for ev in self._events:
            def add(problem: str, detail: str, ev: _Event = ev) -> None:
                self._add(problem, f"{EVENTS} line {ev.line}: {detail}", ev.event_id, ev.index)

            if ev.event_id in seen:
                add("duplicate_event_id", "event_id appears twice")
            seen.add(ev.event_id)
            leaf = leaf_hash(ev.body)
            if ev.leaf_hash is not None and ev.leaf_hash != leaf:
                add("leaf_hash_mismatch", "recorded leaf hash is not the event's hash")
            if ev.env.get("event_id") != ev.event_id:
                add("event_id_mismatch", "the envelope's event_id differs from the record's")
            self._check_inclusion(ev, leaf, proofs.pop(ev.event_id, None), final)
            try:
                schemas.check(ev.env)
                if ev.env["controller"] != self.controller:
                    raise SchemaError("schema_violation", "event of another controller")
                key = registry.signing_key(ev.env, parse_rfc3339(ev.env["occurred_at"]))
            except (SchemaError, RegistryError, ValueError) as exc:
                add("invalid_event", f"{getattr(exc, 'code', 'invalid')}: "
                    f"{getattr(exc, 'detail', exc)}")
                continue
            message = DOMAIN + canonical_bytes({k: v for k, v in ev.env.items() if k != "sig"})
            if ev.env["type"] in ADMIN_TYPES:
                admin_envs.append(ev.env)
                if verifier.verify([(key, message, ev.env["sig"])])[0]:
                    registry.apply(ev.env)
                else:
                    add("bad_signature", "signature does not verify with the admin key")
                continue
            pending.append((ev, key, message, ev.env["sig"]))
        oks = verifier.verify([(k, m, s) for _, k, m, s in pending])
        for (ev, *_), ok in zip(pending, oks, strict=True):
            if not ok:
                self._add("bad_signature", f"{EVENTS} line {ev.line}: signature does not "
                          "verify with the producer key", ev.event_id, ev.index)
        for event_id, doc in proofs.items():
            self._add("missing_event", f"{INCLUSION}: proof for an event not in {EVENTS}",
                      event_id, doc.get("index"))
        try:
            listed = orjson.loads(self.members.get(PRODUCERS, b"null"))
        except orjson.JSONDecodeError:
            listed = None
        if listed != key_history(admin_envs):
            self._add("producer_keys_mismatch",
                      f"{PRODUCERS}: differs from the keys the administration events set")

    def _check_inclusion(self, ev: _Event, leaf: bytes, doc: dict[str, Any] | None,
                         final: tuple[int, bytes] | None) -> None:
        where = f"{INCLUSION} for event at index {ev.index}"
        if final is None:
            return
        try:
            if doc is None:
                raise ProofError("no inclusion proof in the bundle")
            if doc.get("index") != ev.index or doc.get("tree_size") != final[0]:
                raise ProofError("proof is for another index or tree size")
            proof = [unb64(h, 32) for h in doc.get("proof") or []]
            verify_inclusion(leaf, ev.index, final[0], proof, final[1])
        except (ProofError, EncodingError, TypeError) as exc:
            self._add("inclusion_failed", f"{where}: {exc}", ev.event_id, ev.index)
