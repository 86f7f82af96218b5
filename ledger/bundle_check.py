"""Offline verification of an evidence bundle (format in docs/verification.md).

The events of the range are streamed once: each is checked (leaf hash, schema, key in
force, signature, ``received_at`` against the signed checkpoint times) and folded into a
compact range started from ``proofs/range.json``; at the end the range must give the end
edge's signed root. Memory holds the checkpoints, the context events and one batch of
signatures, never the whole range. Every problem has a stable name (the list is in
docs/verification.md, "What the verifier checks").
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ledger.bundle_format import (
    CHECKPOINTS,
    CITED,
    CITED_PROOFS,
    CONSISTENCY,
    CONTEXT,
    EVENTS,
    INCLUSION,
    LATEST,
    LOG_KEYS,
    MANIFEST_JSON,
    MANIFEST_NOTE,
    PRODUCERS,
    RANGE,
    REPORT_JSON,
    Manifest,
    Members,
)
from ledger.canonical import canonical_bytes
from ledger.checkpoint import NoteError, checkpoint_time, open_checkpoint, open_note
from ledger.clock import parse_rfc3339
from ledger.compact import Range
from ledger.encoding import EncodingError, b64, unb64
from ledger.findings import LogEntry, Problem, Report
from ledger.log.base import StoredCheckpoint
from ledger.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from ledger.registry import ADMIN_TYPES, Registry, RegistryError
from ledger.schemas import SchemaError, default_schemas
from ledger.sequencer import origin
from ledger.signing import DOMAIN
from ledger.verifier import Verifier

BATCH = 2000


def key_history(admin_envelopes: Any) -> list[dict[str, Any]]:
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


@dataclass
class _Cp:
    size: int
    root: bytes
    time: str | None


def _at(text: Any) -> Any:
    try:
        return parse_rfc3339(text) if isinstance(text, str) else None
    except (ValueError, OverflowError):
        return None


def evidence_ids(doc: Any) -> Iterator[str]:
    """Every event id the report cites: the strings of every ``evidence`` list in it (the
    API writes these into a bundle, the verifier checks the bundle holds them)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key == "evidence" and isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))
            else:
                yield from evidence_ids(value)
    elif isinstance(doc, list):
        for value in doc:
            yield from evidence_ids(value)


class BundleSource:
    """An evidence bundle (zip, bytes or unzipped directory) opened for verification."""

    def __init__(self, target: Path | str | bytes) -> None:
        self.m = Members(target)
        raw = self.m.read(LOG_KEYS, b"") or b""
        self.log_keys = [k.strip() for k in raw.decode("utf-8", "replace").splitlines()
                         if k.strip()]
        note = (self.m.read(MANIFEST_NOTE, b"") or b"").decode("utf-8", "replace")
        lines = note.split("\n")
        self.controller = lines[1] if len(lines) > 2 else "?"
        self.problems: list[Problem] = []
        self.held: list[str] = []
        self._held_sizes: dict[int, bytes] = {}

    # -- the Source seam (a bundle is checked by ``verify_report``, not by these) ----------

    def controllers(self) -> list[str]:
        return [self.controller]

    def entries(self, controller: str) -> Iterator[LogEntry]:
        for _, doc in self._jsonl(EVENTS):
            if isinstance(doc, dict) and isinstance(doc.get("event"), dict):
                yield LogEntry(doc.get("index", -1), str(doc.get("event_id")),
                               canonical_bytes(doc["event"]), None)

    def checkpoints(self, controller: str) -> list[StoredCheckpoint]:
        return [StoredCheckpoint(controller, int(d.get("size") or 0), b"", d["note"],
                                 str(d.get("time")))
                for _, d in self._jsonl(CHECKPOINTS)
                if isinstance(d, dict) and isinstance(d.get("note"), str)]

    def stored_node(self, controller: str, level: int, index: int) -> bytes | None:
        return None

    def close(self) -> None:
        self.m.close()

    def checkpoint_notes(self) -> dict[int, str]:
        """Every bundled checkpoint note by tree size, with its cosignature lines: what
        the witness check (``--witness VKEY --quorum N``) reads. Not verified here."""
        return {d["size"]: d["note"] for _, d in self._jsonl(CHECKPOINTS)
                if isinstance(d, dict) and isinstance(d.get("size"), int)
                and isinstance(d.get("note"), str)}

    # -- helpers ---------------------------------------------------------------------------

    def _jsonl(self, name: str) -> Iterator[tuple[int, Any]]:
        for n, line in self.m.lines(name):
            try:
                yield n, orjson.loads(line)
            except orjson.JSONDecodeError:
                yield n, None

    def _json(self, name: str) -> Any:
        try:
            return orjson.loads(self.m.read(name, b"null") or b"null")
        except orjson.JSONDecodeError:
            return None

    def _add(self, problem: str, detail: str, event_id: str | None = None,
             index: int | None = None) -> None:
        self.problems.append(Problem(self.controller, problem, event_id, index, detail))

    # -- verification ----------------------------------------------------------------------

    def verify_report(self, log_keys: Sequence[str], verifier: Verifier | None = None,
                      held: Sequence[str] = ()) -> Report:
        """Everything the bundle claims, checked with ``log_keys`` only. ``held`` are
        signed checkpoint notes the auditor already holds (an earlier bundle, a witness,
        ``GET …/checkpoint``): what the operator cannot re-sign after the fact. The bundle
        must agree with each one it spans, and must not be older than any (rollback)."""
        self.problems = []
        self.held = list(held)
        report = Report()
        own = verifier is None
        verifier = verifier or Verifier(0)
        try:
            summary = self._verify(log_keys, verifier)
        finally:
            if own:
                verifier.close()
        report.problems = self.problems
        report.controllers[self.controller] = summary
        return report

    def _verify(self, log_keys: Sequence[str], verifier: Verifier) -> dict[str, Any]:
        for name in self.m.duplicates:
            self._add("duplicate_member", f"{name}: two zip entries with this name")
        man = self._manifest(log_keys)
        if man is None:
            return {"size": 0, "root": None, "events": 0, "checkpoints": 0}
        cps = self._checkpoints(log_keys, man)
        start = cps.get(man.start_size) if man.start_size else _Cp(0, b"", None)
        end, latest = cps.get(man.end_size), cps.get(man.latest_size)
        for role, size, cp in (("start", man.start_size, start), ("end", man.end_size, end),
                               ("latest", man.latest_size, latest)):
            if cp is None:
                self._add("edge_missing", f"the {role} checkpoint (size {size}) is not in "
                          f"{CHECKPOINTS} or does not verify")
            elif cp.time is None and ((role == "start" and size) or (
                    role == "end" and man.period_to is not None)):
                # an edge whose time the period needs (a log written before checkpoints
                # carried times still gives whole-log bundles)
                self._add("checkpoint_untimed", f"the {role} checkpoint (size {size}) has no "
                          "signed time: it cannot be a period edge")
        if (man.begin, man.end) != (man.start_size, man.end_size):
            self._add("range_mismatch", "manifest range is not the edges' sizes")
        if end is not None and latest is not None:
            self._latest(end, latest)
        self._held_sizes = self._held(log_keys, man, cps)
        self._period(man, start, end, latest)
        counts = self._events(man, cps, start, end, latest, verifier)
        return {
            "size": man.end_size, "root": b64(end.root) if end else None,
            "latest": man.latest_size, "range": [man.begin, man.end],
            "period": {"from": man.period_from, "to": man.period_to},
            "received": {"from": start.time if start and man.start_size else None,
                         "to": end.time if end else None},
            "checkpoints": len(cps), **counts,
        }

    def _manifest(self, log_keys: Sequence[str]) -> Manifest | None:
        note = self.m.read(MANIFEST_NOTE)
        if note is None:
            self._add("member_missing", f"{MANIFEST_NOTE} is missing")
            return None
        try:
            man = Manifest.parse(open_note(note.decode("utf-8"), log_keys))
        except (NoteError, UnicodeDecodeError, ValueError) as exc:
            self._add("bundle_manifest", f"{MANIFEST_NOTE}: {exc}")
            return None
        self.controller = man.controller
        for name, digest in man.digests.items():
            if name not in self.m:
                self._add("member_missing", f"{name}: listed in the manifest but absent")
                continue
            h = hashlib.sha256()
            with self.m.open(name) as f:
                while chunk := f.read(1 << 16):
                    h.update(chunk)
            if h.hexdigest() != digest:
                self._add("member_altered", f"{name}: contents differ from the signed manifest")
        for name in self.m.names:
            if name != MANIFEST_NOTE and name not in man.digests:
                self._add("member_unlisted", f"{name}: not listed in the signed manifest")
        return man

    def _checkpoints(self, log_keys: Sequence[str], man: Manifest) -> dict[int, _Cp]:
        out: dict[int, _Cp] = {}
        for n, doc in self._jsonl(CHECKPOINTS):
            where = f"{CHECKPOINTS} line {n}"
            try:
                if not isinstance(doc, dict) or not isinstance(doc.get("note"), str):
                    raise NoteError("not a checkpoint record")
                cp = open_checkpoint(doc["note"], log_keys, origin=origin(self.controller))
                at = checkpoint_time(cp)
            except NoteError as exc:
                self._add("bad_checkpoint", f"{where}: {exc}")
                continue
            if doc.get("size") != cp.size:
                self._add("bad_checkpoint", f"{where}: size field differs from the signed note")
            if doc.get("time") != at:
                self._add("checkpoint_time_mismatch",
                          f"{where}: time field differs from the signed time")
            if cp.size in out:
                if out[cp.size].root != cp.root:
                    self._add("checkpoint_fork", f"{where}: two signed roots for size {cp.size}")
                continue
            out[cp.size] = _Cp(cp.size, cp.root, at)
        ordered = [out[s] for s in sorted(out)]
        proofs: dict[tuple[Any, Any], Any] = {}
        for _, doc in self._jsonl(CONSISTENCY):
            if isinstance(doc, dict):
                proofs[(doc.get("from"), doc.get("to"))] = doc.get("proof")
        for a, b in itertools.pairwise(ordered):
            ta, tb = _at(a.time), _at(b.time)
            if ta is not None and tb is not None and tb < ta:
                self._add("checkpoint_time_order",
                          f"checkpoint at size {b.size} is signed earlier than size {a.size}")
            try:
                proof = proofs.get((a.size, b.size))
                if not isinstance(proof, list):
                    raise ProofError("no proof in the bundle")
                verify_consistency(a.size, b.size, a.root, b.root,
                                   [unb64(h, 32) for h in proof])
            except (ProofError, EncodingError, TypeError) as exc:
                self._add("checkpoint_fork", f"{CONSISTENCY} {a.size} -> {b.size}: "
                          f"checkpoints not shown consistent: {exc}")
        if ordered and (ordered[0].size < man.start_size or ordered[-1].size > man.latest_size):
            self._add("range_mismatch", f"{CHECKPOINTS} reaches outside the manifest's edges")
        return out

    def _latest(self, end: _Cp, latest: _Cp) -> None:
        doc = self._json(LATEST)
        try:
            if not isinstance(doc, dict) or (doc.get("from"), doc.get("to")) != (
                    end.size, latest.size):
                raise ProofError(f"{LATEST} is not the proof from {end.size} to {latest.size}")
            verify_consistency(end.size, latest.size, end.root, latest.root,
                               [unb64(h, 32) for h in doc.get("proof") or []])
        except (ProofError, EncodingError, TypeError) as exc:
            self._add("latest_inconsistent", f"end edge and newest checkpoint: {exc}")

    def _period(self, man: Manifest, start: _Cp | None, end: _Cp | None,
                latest: _Cp | None) -> None:
        f, t = _at(man.period_from), _at(man.period_to)
        if (man.period_from and f is None) or (man.period_to and t is None):
            self._add("bundle_manifest", "manifest period is not two times")
            return
        if f is None and t is None and (man.begin != 0 or man.end_size != man.latest_size):
            self._add("not_whole_log", f"labelled the whole log, but holds leaves "
                      f"{man.begin}..{man.end - 1} of {man.latest_size}")
            return
        if man.begin and (f is None or start is None or start.time is None
                          or (_at(start.time) or f) > f):
            self._add("period_mismatch", f"the range starts at leaf {man.begin}, whose "
                      "checkpoint is not signed at or before the period's start")
        if end is not None and end.time is not None:
            reaches = t is not None and (_at(end.time) or t) >= t
            if not reaches and man.end_size != man.latest_size:
                self._add("period_mismatch", "the end checkpoint is signed before the "
                          "period's end and is not the newest: the range stops short")

    def _events(self, man: Manifest, cps: dict[int, _Cp], start: _Cp | None,
                end: _Cp | None, latest: _Cp | None, verifier: Verifier) -> dict[str, Any]:
        schemas, registry = default_schemas(), Registry()
        admin: list[dict[str, Any]] = []
        report_doc = self._json(REPORT_JSON)
        cited = set(evidence_ids(report_doc))
        self._report_period(man, report_doc)
        sizes = sorted(cps)
        pending: list[tuple[dict[str, Any], int, str, bytes, bytes, str]] = []
        counts = {"events": 0, "range_events": 0, "period_events": 0, "context_events": 0,
                  "cited_events": 0}
        f, t = _at(man.period_from), _at(man.period_to)

        def flush() -> None:
            oks = verifier.verify([(k, m, s) for *_, k, m, s in pending])
            for (_, index, eid, *_), ok in zip(pending, oks, strict=True):
                if not ok:
                    self._add("bad_signature", "signature does not verify with the producer "
                              "key", eid, index)
            pending.clear()

        def check(doc: Any, where: str) -> tuple[int, str, bytes] | None:
            if not isinstance(doc, dict) or not isinstance(doc.get("event"), dict) \
                    or not isinstance(doc.get("index"), int):
                self._add("malformed_event", f"{where}: not an event record")
                return None
            env, index, eid = doc["event"], doc["index"], str(doc.get("event_id"))
            body = canonical_bytes(env)
            leaf = leaf_hash(body)
            counts["events"] += 1
            cited.discard(eid)
            try:
                if unb64(doc.get("leaf_hash") or "", 32) != leaf:
                    raise EncodingError("differs")
            except (EncodingError, TypeError):
                self._add("leaf_hash_mismatch", f"{where}: recorded leaf hash is not the "
                          "event's hash", eid, index)
            if env.get("event_id") != eid:
                self._add("event_id_mismatch", f"{where}: the envelope's event_id differs",
                          eid, index)
            self._received(doc.get("received_at"), index, cps, sizes, eid, where)
            try:
                schemas.check(env)
                if env["controller"] != self.controller:
                    raise SchemaError("schema_violation", "event of another controller")
                key = registry.signing_key(env, parse_rfc3339(env["occurred_at"]))
            except (SchemaError, RegistryError, ValueError) as exc:
                self._add("invalid_event", f"{where}: {getattr(exc, 'code', 'invalid')}: "
                          f"{getattr(exc, 'detail', exc)}", eid, index)
                return index, eid, leaf
            message = DOMAIN + canonical_bytes({k: v for k, v in env.items() if k != "sig"})
            if env["type"] in ADMIN_TYPES:
                flush()
                admin.append(env)
                if verifier.verify([(key, message, env["sig"])])[0]:
                    registry.apply(env)
                else:
                    self._add("bad_signature", f"{where}: signature does not verify with "
                              "the admin key", eid, index)
            else:
                pending.append((env, index, eid, key, message, env["sig"]))
                if len(pending) >= BATCH:
                    flush()
            return index, eid, leaf

        # context before the range (proved in the end edge), the range, then the cited
        # events after it (proved in the newest checkpoint)
        context = list(self._jsonl(CONTEXT))
        context.sort(key=lambda x: x[1].get("index", -1) if isinstance(x[1], dict) else -1)
        proofs = {d.get("event_id"): d for _, d in self._jsonl(INCLUSION) if isinstance(d, dict)}
        for n, doc in context:
            got = check(doc, f"{CONTEXT} line {n}")
            if got is not None:
                counts["context_events"] += 1
                if got[0] >= man.begin:
                    self._add("event_outside_range", f"{CONTEXT} line {n}: a context event "
                              "must come before the range", got[1], got[0])
                    continue
            self._proved(got, proofs, end, INCLUSION)
        self._range(man, start, end, check, counts, f, t)
        later = list(self._jsonl(CITED))
        later.sort(key=lambda x: x[1].get("index", -1) if isinstance(x[1], dict) else -1)
        proofs = {d.get("event_id"): d for _, d in self._jsonl(CITED_PROOFS)
                  if isinstance(d, dict)}
        for n, doc in later:
            got = check(doc, f"{CITED} line {n}")
            if got is not None:
                counts["cited_events"] += 1
                if got[0] < man.end:
                    self._add("event_outside_range", f"{CITED} line {n}: a cited event "
                              "here must come after the range", got[1], got[0])
                    continue
            self._proved(got, proofs, latest, CITED_PROOFS)
        counts["events"] -= counts["cited_events"]  # "events": range + context
        flush()
        if self._json(PRODUCERS) != key_history(admin):
            self._add("producer_keys_mismatch",
                      f"{PRODUCERS}: differs from the keys the administration events set")
        for eid in sorted(cited):
            self._add("report_evidence_missing", f"{REPORT_JSON} cites an event the bundle "
                      "does not hold", eid)
        listed = self._json(MANIFEST_JSON)
        if isinstance(listed, dict):
            for name in ("events", "range_events", "period_events", "context_events",
                         "cited_events"):
                if listed.get(name) != counts[name]:
                    self._add("count_mismatch", f"{MANIFEST_JSON}: {name} is "
                              f"{listed.get(name)}, the bundle holds {counts[name]}")
        return counts

    def _proved(self, got: tuple[int, str, bytes] | None, proofs: dict[Any, Any],
                cp: _Cp | None, member: str) -> None:
        """An event outside the range: its inclusion proof to ``cp``'s signed root."""
        if got is None or cp is None:
            return
        index, eid, leaf = got
        doc = proofs.get(eid)
        try:
            if not isinstance(doc, dict) or doc.get("index") != index \
                    or doc.get("tree_size") != cp.size:
                raise ProofError(f"no inclusion proof to tree size {cp.size}")
            verify_inclusion(leaf, index, cp.size,
                             [unb64(h, 32) for h in doc.get("proof") or []], cp.root)
        except (ProofError, EncodingError, TypeError) as exc:
            self._add("inclusion_failed", f"{member}: {exc}", eid, index)

    def _range(self, man: Manifest, start: _Cp | None, end: _Cp | None, check: Any,
               counts: dict[str, int], f: Any, t: Any) -> None:
        doc = self._json(RANGE)
        rng: Range | None = None
        if not isinstance(doc, dict) or (doc.get("begin"), doc.get("end")) != (
                man.begin, man.end):
            self._add("range_mismatch", f"{RANGE} is not for the manifest's range "
                      f"{man.begin}..{man.end}")
            doc = doc if isinstance(doc, dict) else {}
        try:
            rng = Range(0, man.begin, [unb64(h, 32) for h in doc.get("left") or []])
        except (ProofError, EncodingError, TypeError) as exc:
            self._add("range_left_mismatch", f"{RANGE}: left is not the compact range of "
                      f"[0, {man.begin}): {exc}")
        if rng is not None and start is not None and man.begin \
                and rng.root() != start.root:
            self._add("range_left_mismatch", f"{RANGE}: left hashes do not give the start "
                      f"checkpoint's root at size {man.begin}")
        expected = man.begin
        for n, rec in self._jsonl(EVENTS):
            got = check(rec, f"{EVENTS} line {n}")
            if got is None:
                continue
            index, eid, leaf = got
            counts["range_events"] += 1
            env = rec["event"]
            at = _at(env.get("occurred_at"))
            if at is None or ((f is None or at >= f) and (t is None or at < t)):
                counts["period_events"] += 1
            if index >= man.end or index < man.begin:
                self._add("event_outside_range", f"{EVENTS} line {n}: index {index} is not in "
                          f"{man.begin}..{man.end - 1}", eid, index)
            elif index > expected:
                self._add("missing_event", f"no event at index {expected}"
                          + (f"..{index - 1}" if index - 1 > expected else ""), None, expected)
            elif index < expected:
                self._add("duplicate_index" if index == expected - 1 else "event_out_of_order",
                          f"{EVENTS} line {n}: index {index} after {expected - 1}", eid, index)
            expected = max(expected, index + 1)
            if rng is not None:
                rng.append(leaf)
                want = self._held_sizes.get(rng.end)
                if want is not None and rng.root() != want:
                    self._add("held_checkpoint_mismatch", f"the checkpoint you hold at size "
                              f"{rng.end} has another root than this bundle's leaves give: "
                              "the log was rebuilt or forked")
        if expected < man.end:
            self._add("missing_event", f"{EVENTS} stops at index {expected - 1}, the range "
                      f"ends at {man.end - 1}", None, expected)
        if rng is not None and end is not None and (rng.end != man.end
                                                    or rng.root() != end.root):
            self._add("range_root_mismatch", f"leaves 0..{man.end - 1} from {RANGE} and "
                      f"{EVENTS} do not give the end checkpoint's signed root")

    def _held(self, log_keys: Sequence[str], man: Manifest, cps: dict[int, _Cp]
              ) -> dict[int, bytes]:
        """Check held checkpoints against the bundle's signed ones; return those inside
        the range, to compare with the roots the leaves give as they stream."""
        inside: dict[int, bytes] = {}
        for n, note in enumerate(self.held, 1):
            try:
                cp = open_checkpoint(note, log_keys, origin=origin(self.controller))
            except NoteError as exc:
                self._add("bad_checkpoint", f"held checkpoint {n}: {exc}")
                continue
            if cp.size > man.latest_size:
                self._add("rolled_back", f"you hold a checkpoint at size {cp.size}; this "
                          f"bundle's newest is {man.latest_size}: the log was rolled back")
            elif cp.size in cps and cps[cp.size].root != cp.root:
                self._add("held_checkpoint_mismatch", f"the checkpoint you hold at size "
                          f"{cp.size} differs from the bundle's: the log was forked")
            elif man.begin < cp.size <= man.end:
                inside[cp.size] = cp.root
        return inside

    def _received(self, received: Any, index: int, cps: dict[int, _Cp], sizes: list[int],
                  eid: str, where: str) -> None:
        """``received_at`` is no later than the signed time of the first checkpoint that
        includes the event (times do not decrease with size, checked separately)."""
        import bisect

        i = bisect.bisect_right(sizes, index)
        if i == len(sizes):
            return
        bound = cps[sizes[i]].time
        got, limit = _at(received), _at(bound)
        if limit is None:
            return
        if got is None or got > limit:
            self._add("received_after_checkpoint", f"{where}: received_at {received!r} is after "
                      f"the signed time {bound} of the checkpoint at size {sizes[i]}",
                      eid, index)

    def _report_period(self, man: Manifest, doc: Any) -> None:
        period = doc.get("period") if isinstance(doc, dict) else None
        if period != {"from": man.period_from, "to": man.period_to}:
            self._add("report_period_mismatch", f"{REPORT_JSON}: its period {period!r} is not "
                      "the bundle's")
