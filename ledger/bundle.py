"""Evidence bundles: a zip an auditor verifies offline with ``auditledger verify``.

A bundle holds a *complete* stretch of one controller's log: every leaf between two
signed, timed checkpoints (the period's edges), with the compact-range proof from which
the verifier recomputes both signed roots (``ledger.compact``), so an event dropped from
the range cannot go unnoticed. The events whose ``occurred_at`` lies in the period are a
view inside that range. Administration events before the range (whose keys sign it) and
events the report cites from outside it come with inclusion proofs.

Format, members and line shapes: docs/verification.md (``auditledger-bundle/2``); the names
are in ``ledger.bundle_format``. Bundles are written as streams: memory stays bounded by
the number of checkpoints and context events, not by the number of events.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import zipfile
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.bundle_check import BundleSource, key_history
from ledger.bundle_format import (
    CHECKPOINTS,
    CITED,
    CITED_PROOFS,
    CONSISTENCY,
    CONTEXT,
    EVENTS,
    FORMAT,
    INCLUSION,
    LATEST,
    LOG_KEYS,
    MANIFEST_JSON,
    MANIFEST_NOTE,
    PRODUCERS,
    RANGE,
    README,
    README_NAME,
    REPORT_HTML,
    REPORT_JSON,
    BundleError,
    Manifest,
)
from ledger.checkpoint import MalformedNoteError, checkpoint_time, parse_checkpoint_body
from ledger.clock import format_rfc3339, parse_rfc3339
from ledger.compact import range_proof
from ledger.encoding import b64
from ledger.log.base import StoredCheckpoint, StoredEvent
from ledger.merkle import consistency_proof, inclusion_proof
from ledger.registry import ADMIN_TYPES
from ledger.sequencer import origin
from ledger.signing import load_private_key

__all__ = ["BundleError", "BundleSource", "build_bundle", "key_history", "write_bundle"]

ReportMaker = Callable[[dict[str, Any]], tuple[bytes, bytes]]


def _as_time(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_rfc3339(value + "T00:00:00Z" if len(value) == 10 else value)


def _cached(get: Any) -> Any:
    """A node getter that remembers: context proofs share most of their path."""
    cache: dict[tuple[int, int], bytes] = {}

    def cached(level: int, index: int) -> bytes:
        key = (level, index)
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = get(level, index)
        return hit

    return cached


def _time_of(cp: StoredCheckpoint) -> datetime | None:
    """The checkpoint's signed time, or None when it carries no ``time`` extension."""
    text = cp.note[: cp.note.rfind("\n\n") + 1]
    try:
        at = checkpoint_time(parse_checkpoint_body(text))
    except MalformedNoteError:
        return None
    return parse_rfc3339(at) if at else None


def _signed_time(cp: StoredCheckpoint) -> str | None:
    """The ``time`` field of a checkpoint record: the signed extension, verbatim."""
    at = _time_of(cp)
    return format_rfc3339(at) if at else None


def choose_edges(
    cps: Sequence[StoredCheckpoint], start: datetime | None, end: datetime | None,
    lateness: timedelta | None,
) -> tuple[StoredCheckpoint | None, StoredCheckpoint]:
    """The period's edge checkpoints (docs/verification.md, "How the period is chosen"):
    the newest timed one at or before ``start`` (None: the empty tree), and the oldest
    timed one at or after ``end + lateness`` — else at or after ``end`` — else the newest.
    ``cps`` ascending by size, non-empty."""
    timed = [(cp, at) for cp in cps if (at := _time_of(cp)) is not None]
    first: StoredCheckpoint | None = None
    if start is not None:
        for cp, at in timed:
            if at <= start:
                first = cp
    last = cps[-1]
    if end is not None:
        targets = [end + lateness, end] if lateness else [end]
        for target in targets:
            hit = next((cp for cp, at in timed if at >= target), None)
            if hit is not None:
                last = hit
                break
    if first is not None and first.size > last.size:
        first = None
    return first, last


class _Writer:
    """One zip being written, member by member, with each member's SHA-256."""

    def __init__(self, out: IO[bytes], stamp: tuple[int, ...]) -> None:
        self.zf = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6)
        self.stamp = stamp
        self.digests: dict[str, str] = {}

    def member(self, name: str, chunks: Iterable[bytes]) -> None:
        info = zipfile.ZipInfo(name, date_time=self.stamp)  # type: ignore[arg-type]
        info.compress_type = zipfile.ZIP_DEFLATED
        digest = hashlib.sha256()
        with self.zf.open(info, "w", force_zip64=True) as f:
            buf = bytearray()
            for chunk in chunks:
                digest.update(chunk)
                buf += chunk
                if len(buf) >= 1 << 16:
                    f.write(buf)
                    buf.clear()
            f.write(buf)
        self.digests[name] = digest.hexdigest()

    def close(self) -> None:
        self.zf.close()


def _record(ev: StoredEvent) -> bytes:
    return (b'{"index":%d,"event_id":%s,"received_at":%s,"leaf_hash":%s,"event":%s}\n'
            % (ev.index, orjson.dumps(ev.event_id), orjson.dumps(ev.received_at),
               orjson.dumps(b64(ev.leaf_hash)), ev.body))


def _in_period(ev: StoredEvent, start: datetime | None, end: datetime | None) -> bool:
    """Whether the event belongs to the period's view. An event whose stored
    ``occurred_at`` cannot be read cannot be shown outside the period: it is in it."""
    try:
        at = parse_rfc3339(ev.occurred_at)
    except (ValueError, OverflowError):
        return True
    return (start is None or at >= start) and (end is None or at < end)


def write_bundle(
    ledger_or_log: Any,
    controller: str,
    out: IO[bytes],
    from_: str | datetime | None = None,
    to: str | datetime | None = None,
    report: ReportMaker | tuple[bytes, bytes] | None = None,
    *,
    cited: Iterable[str] = (),
    signing_key: Ed25519PrivateKey | None = None,
    key_name: str = "auditledger",
    log_keys: Sequence[str] = (),
    lateness: timedelta | None = None,
    now: datetime | None = None,
    note_of: Callable[[StoredCheckpoint], str] | None = None,
) -> Manifest:
    """Stream the bundle for ``controller``'s period ``[from_, to)`` into ``out``.

    Given a ``Ledger``, it signs a checkpoint first (so the end edge exists and covers
    everything stored) and uses the ledger's log key and lateness bound. ``report`` is the
    accountability report as (json, html) bytes, or a function of the period
    (``{"from", "to"}``) that makes them: the ledger never imports the read side. ``cited``
    are event ids the report names as evidence: those before the range are bundled as
    context (inclusion proofs to the end edge), those after it in ``cited.jsonl``
    (inclusion proofs to the newest checkpoint), so every cited event is in the bundle. ``note_of``
    gives the note text bundled for a checkpoint; by default the log's note plus the
    C2SP tlog-cosignature lines the log keeps for it (``Log.cosignatures``, when the log
    has them).
    It MUST return the same signed body (only signature lines added).
    """
    if hasattr(ledger_or_log, "cfg") and hasattr(ledger_or_log, "log"):
        ledger = ledger_or_log
        ledger.flush()
        log = ledger.log
        signing_key = signing_key or load_private_key(ledger.cfg.log_key_file)
        key_name = ledger.cfg.log_key_name
        log_keys = log_keys or [ledger.verifier_key]
        lateness = lateness if lateness is not None else ledger.cfg.max_lateness
        now = now or ledger.clock.now()
    else:
        log = ledger_or_log
    if signing_key is None or not log_keys:
        raise BundleError("building a bundle needs the log's signing key and verifier key")
    start, end = _as_time(from_), _as_time(to)
    cps = sorted((cp for cp in log.checkpoints(controller) if cp.size > 0),
                 key=lambda cp: cp.size)
    if not cps:
        raise BundleError(f"controller {controller} has no signed checkpoint yet")
    first, last = choose_edges(cps, start, end, lateness)
    latest = cps[-1]
    begin, stop = (first.size if first else 0), last.size
    if note_of is None and hasattr(log, "cosignatures"):
        # the witness cosignatures kept with each checkpoint (C2SP tlog-cosignature lines)
        def note_of(cp: StoredCheckpoint) -> str:
            return cp.note + "".join(log.cosignatures(controller, cp.size))
    get = _cached(log.node_getter(controller))
    period = {"from": format_rfc3339(start) if start else None,
              "to": format_rfc3339(end) if end else None}
    if report is None:
        report = _summary_report
    report_json, report_html = report(period) if callable(report) else report
    wanted = set(cited)

    stamp = now.timetuple()[:6] if now else (1980, 1, 1, 0, 0, 0)
    w = _Writer(out, stamp)
    context: list[StoredEvent] = []
    later: list[StoredEvent] = []  # cited events after the range
    admin: list[dict[str, Any]] = []
    counts = {"events": 0, "period_events": 0}

    def range_lines() -> Iterable[bytes]:
        for ev in log.events(controller=controller):
            if ev.index >= stop:
                if ev.event_id in wanted:
                    later.append(ev)
                    wanted.discard(ev.event_id)
                if ev.index >= latest.size or not wanted:
                    break
                continue
            if ev.index < begin:
                if ev.type in ADMIN_TYPES or ev.event_id in wanted:
                    context.append(ev)
                    wanted.discard(ev.event_id)
                if ev.type in ADMIN_TYPES:
                    admin.append(ev.envelope())
                continue
            wanted.discard(ev.event_id)
            if ev.type in ADMIN_TYPES:
                admin.append(ev.envelope())
            counts["events"] += 1
            counts["period_events"] += _in_period(ev, start, end)
            yield _record(ev)

    w.member(README_NAME, [README.format(format=FORMAT).encode()])
    w.member(LOG_KEYS, ["".join(k + "\n" for k in log_keys).encode()])
    w.member(EVENTS, range_lines())
    w.member(CONTEXT, (_record(ev) for ev in context))
    w.member(INCLUSION, (
        orjson.dumps({"event_id": ev.event_id, "index": ev.index, "tree_size": stop,
                      "proof": [b64(h) for h in inclusion_proof(get, ev.index, stop)]})
        + b"\n" for ev in context))
    w.member(CITED, (_record(ev) for ev in later))
    w.member(CITED_PROOFS, (
        orjson.dumps({"event_id": ev.event_id, "index": ev.index, "tree_size": latest.size,
                      "proof": [b64(h) for h in inclusion_proof(get, ev.index, latest.size)]})
        + b"\n" for ev in later))
    w.member(PRODUCERS, [orjson.dumps(key_history(admin), option=orjson.OPT_INDENT_2)])
    spanned = [cp for cp in cps if begin <= cp.size <= latest.size]
    w.member(CHECKPOINTS, (
        orjson.dumps({"size": cp.size, "time": _signed_time(cp),
                      "note": note_of(cp) if note_of else cp.note}) + b"\n"
        for cp in spanned))
    w.member(CONSISTENCY, (
        orjson.dumps({"from": a.size, "to": b.size,
                      "proof": [b64(h) for h in consistency_proof(get, a.size, b.size)]})
        + b"\n" for a, b in itertools.pairwise(spanned)))
    w.member(RANGE, [orjson.dumps({"begin": begin, "end": stop,
                                   "left": [b64(h) for h in range_proof(get, begin)]})])
    w.member(LATEST, [orjson.dumps({
        "from": stop, "to": latest.size,
        "proof": [b64(h) for h in consistency_proof(get, stop, latest.size)]})])
    w.member(REPORT_JSON, [report_json])
    w.member(REPORT_HTML, [report_html])
    created = format_rfc3339(now) if now else "1980-01-01T00:00:00.000Z"
    manifest = Manifest(controller, period["from"], period["to"], begin, stop, begin, stop,
                        latest.size, created)
    w.member(MANIFEST_JSON, [orjson.dumps({
        "format": FORMAT, "controller": controller, "origin": origin(controller),
        **period, "created_at": created, "range": {"begin": begin, "end": stop},
        "start": begin, "end": stop, "latest": latest.size,
        "events": counts["events"] + len(context), "range_events": counts["events"],
        "period_events": counts["period_events"], "context_events": len(context),
        "cited_events": len(later),
        "log_keys": list(log_keys)}, option=orjson.OPT_INDENT_2)])
    manifest.digests = dict(w.digests)
    from ledger.checkpoint import sign_note

    note = sign_note("".join(x + "\n" for x in manifest.lines()), key_name, signing_key)
    w.member(MANIFEST_NOTE, [note.encode()])
    w.close()
    return manifest


def _summary_report(period: dict[str, Any]) -> tuple[bytes, bytes]:
    doc = {"period": period, "note": "no accountability report was passed in"}
    html = "<!doctype html><meta charset=utf-8><title>report</title><p>No report.</p>"
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2), html.encode()


def build_bundle(
    ledger_or_log: Any,
    controller: str,
    from_: str | datetime | None = None,
    to: str | datetime | None = None,
    report_json: bytes | None = None,
    report_html: bytes | None = None,
    **kwargs: Any,
) -> bytes:
    """``write_bundle`` into memory (small bundles, tests); ``report_json`` /
    ``report_html`` as bytes. Large bundles: ``write_bundle`` to a file."""
    buf = io.BytesIO()
    report = (report_json, report_html) if report_json is not None and report_html else None
    write_bundle(ledger_or_log, controller, buf, from_, to, report, **kwargs)
    return buf.getvalue()


def save_bundle(ledger_or_log: Any, controller: str, path: Path, *args: Any,
                **kwargs: Any) -> Manifest:
    """``write_bundle`` to ``path`` (written beside it, then renamed: never half a zip)."""
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as f:
        manifest = write_bundle(ledger_or_log, controller, f, *args, **kwargs)
    tmp.replace(path)
    return manifest
