"""Ingest: every check DESIGN.md lists, in its order, then one durable append.

Stateless checks reject an event with a stable code and store nothing of it; the good
events of the same batch are still appended. Stateful oddities (a withdrawal without a
consent, a notification for an unknown breach) are *not* checked here: they are evidence,
and the projections raise findings about them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from ledger.canonical import signed_and_unsigned
from ledger.clock import Clock, format_rfc3339, parse_rfc3339
from ledger.codes import MAX_CLOCK_SKEW_SECONDS, MAX_EVENT_BYTES, Code
from ledger.encoding import b64
from ledger.log.base import Log, Prepared, StaleLog, StoredEvent
from ledger.registry import ADMIN, ADMIN_TYPES, Registry, RegistryError
from ledger.schemas import SchemaError, Schemas
from ledger.signing import DOMAIN
from ledger.verifier import CHUNK, Verifier


@dataclass(slots=True)
class Result:
    """Per-event answer: ``accepted`` | ``duplicate`` | ``rejected`` (with ``code``)."""

    event_id: str | None
    status: str
    code: str | None = None
    detail: str | None = None
    index: int | None = None
    leaf_hash: str | None = None
    controller: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event_id": self.event_id, "status": self.status}
        for name in ("code", "detail", "index", "leaf_hash", "controller"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def stored(cls, ev: StoredEvent, status: str = "accepted") -> Result:
        return cls(ev.event_id, status, index=ev.index, leaf_hash=b64(ev.leaf_hash),
                   controller=ev.controller)


class Rejected(Exception):
    def __init__(self, code: Code, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


@dataclass(slots=True)
class _Candidate:
    pos: int
    env: dict[str, Any]
    prepared: Prepared
    key: bytes
    message: bytes
    occurred: datetime


class _SignatureStream:
    """Sends signatures to the verifier in chunks as candidates arrive, so checking them
    overlaps with parsing the rest of the batch."""

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self.pending: list[_Candidate] = []
        self.sent: list[tuple[list[_Candidate], Callable[[], list[bool]]]] = []

    def _send(self) -> None:
        chunk, self.pending = self.pending, []
        self.sent.append(
            (chunk, self.verifier.start([(c.key, c.message, c.env["sig"]) for c in chunk]))
        )

    def add(self, cand: _Candidate) -> None:
        self.pending.append(cand)
        if len(self.pending) >= CHUNK:
            self._send()

    def results(self) -> dict[int, bool]:
        """Position in the batch → signature valid."""
        if self.pending:
            self._send()
        return {c.pos: ok for chunk, wait in self.sent
                for c, ok in zip(chunk, wait(), strict=True)}


class Ingestor:
    """Validates and appends. Holds the registry view, kept in step with the log."""

    def __init__(self, log: Log, schemas: Schemas, clock: Clock, verifier: Verifier) -> None:
        self.log, self.schemas, self.clock, self.verifier = log, schemas, clock, verifier
        self.registry = Registry()
        self._seen_seq = 0
        self.refresh()

    def refresh(self) -> None:
        """Fold administration events other writers appended since we last looked."""
        last = self.log.last_seq()
        for ev in self.log.events(after_seq=self._seen_seq, types=sorted(ADMIN_TYPES)):
            if ev.seq > last:
                break
            self.registry.apply(ev.envelope())
        self._seen_seq = last

    def submit(self, items: Sequence[bytes | dict[str, Any]]) -> list[Result]:
        """Check and append a batch; one result per item, in order."""
        for _ in range(10):
            try:
                return self._submit(items)
            except StaleLog:
                self.refresh()
        raise RuntimeError("log kept moving under this writer; giving up")

    # -- the checks, in DESIGN.md's order ----------------------------------------------

    def _parse(self, item: bytes | dict[str, Any]) -> dict[str, Any]:
        if isinstance(item, dict):
            env = item
            if len(orjson.dumps(env)) > MAX_EVENT_BYTES:
                raise Rejected(Code.TOO_LARGE, f"event exceeds {MAX_EVENT_BYTES} bytes")
        else:
            if len(item) > MAX_EVENT_BYTES:
                raise Rejected(Code.TOO_LARGE, f"event exceeds {MAX_EVENT_BYTES} bytes")
            try:
                env = orjson.loads(item)
            except orjson.JSONDecodeError as exc:
                raise Rejected(Code.MALFORMED_JSON, str(exc)) from None
        if not isinstance(env, dict):
            raise Rejected(Code.SCHEMA_VIOLATION, "an event must be a JSON object")
        return env

    def _prepare(self, pos: int, item: bytes | dict[str, Any], reg: Registry) -> _Candidate:
        env = self._parse(item)
        try:
            self.schemas.check(env)
        except SchemaError as exc:
            raise Rejected(Code(exc.code), exc.detail) from None
        if env["type"].startswith("producer.") and env["data"].get("producer_id") == ADMIN:
            raise Rejected(Code.SCHEMA_VIOLATION, "data.producer_id: 'admin' is reserved")
        occurred = parse_rfc3339(env["occurred_at"])
        try:
            key = reg.signing_key(env, occurred)
        except RegistryError as exc:
            raise Rejected(exc.code, exc.detail) from None
        body, unsigned = signed_and_unsigned(env)
        message = DOMAIN + unsigned
        prepared = Prepared(
            env["event_id"], env["controller"], env["type"], env["producer"],
            env["occurred_at"], body, hashlib.sha256(message).digest(),
        )
        return _Candidate(pos, env, prepared, key, message, occurred)

    def _late_checks(self, cand: _Candidate, sig_ok: bool) -> None:
        if not sig_ok:
            raise Rejected(Code.BAD_SIGNATURE, "signature does not verify with the producer key")
        if cand.occurred - self.clock.now() > timedelta(seconds=MAX_CLOCK_SKEW_SECONDS):
            raise Rejected(
                Code.CLOCK_SKEW,
                f"occurred_at is more than {MAX_CLOCK_SKEW_SECONDS} s in the future",
            )

    def _submit(self, items: Sequence[bytes | dict[str, Any]]) -> list[Result]:
        expect_seq = self.log.last_seq()
        if expect_seq != self._seen_seq:
            self.refresh()
        results: list[Result | None] = [None] * len(items)
        reg = self.registry
        ordered: list[_Candidate] = []  # survivors of the stateless checks, input order
        admin_ok: dict[int, bool] = {}
        signatures = _SignatureStream(self.verifier)
        for pos, item in enumerate(items):
            try:
                cand = self._prepare(pos, item, reg)
                if cand.prepared.type not in ADMIN_TYPES:
                    signatures.add(cand)
                else:
                    # Later events in this batch may depend on it: check it now, fully.
                    ok = self.verifier.verify([(cand.key, cand.message, cand.env["sig"])])[0]
                    self._late_checks(cand, ok)
                    if not self._is_duplicate_in_log(cand):
                        if reg is self.registry:
                            reg = reg.copy()
                        reg.apply(cand.env)
                    admin_ok[pos] = True
                ordered.append(cand)
            except Rejected as exc:
                results[pos] = _rejection(item, exc)
        sig_ok = signatures.results()
        survivors: list[_Candidate] = []
        for cand in ordered:
            try:
                if cand.pos not in admin_ok:
                    self._late_checks(cand, sig_ok[cand.pos])
                survivors.append(cand)
            except Rejected as exc:
                results[cand.pos] = _rejection(items[cand.pos], exc)
        to_append, dup_of = self._idempotency(survivors, results)
        stored = self.log.append(
            [c.prepared for c in to_append], format_rfc3339(self.clock.now()), expect_seq
        )
        by_id = {ev.event_id: ev for ev in stored}
        for cand, ev in zip(to_append, stored, strict=True):
            results[cand.pos] = Result.stored(ev)
        for pos, event_id in dup_of.items():
            results[pos] = Result.stored(by_id[event_id], "duplicate")
        self.registry = reg
        self._seen_seq = stored[-1].seq if stored else expect_seq
        return [r for r in results if r is not None]

    def _is_duplicate_in_log(self, cand: _Candidate) -> bool:
        found = self.log.lookup([cand.prepared.event_id]).get(cand.prepared.event_id)
        if found is None:
            return False
        if found.canon_hash != cand.prepared.canon_hash:
            raise Rejected(Code.EVENT_ID_CONFLICT, "event_id already used for other content")
        return True

    def _idempotency(
        self, survivors: list[_Candidate], results: list[Result | None]
    ) -> tuple[list[_Candidate], dict[int, str]]:
        """Same event_id + same bytes → the first receipt; other bytes → conflict."""
        existing = self.log.lookup([c.prepared.event_id for c in survivors])
        first_in_batch: dict[str, _Candidate] = {}
        to_append: list[_Candidate] = []
        dup_of: dict[int, str] = {}
        for cand in survivors:
            eid, fingerprint = cand.prepared.event_id, cand.prepared.canon_hash
            prior = existing.get(eid)
            earlier = first_in_batch.get(eid)
            if prior is not None:
                if prior.canon_hash == fingerprint:
                    results[cand.pos] = Result.stored(prior, "duplicate")
                else:
                    results[cand.pos] = _conflict(eid)
            elif earlier is not None:
                if earlier.prepared.canon_hash == fingerprint:
                    dup_of[cand.pos] = eid
                else:
                    results[cand.pos] = _conflict(eid)
            else:
                first_in_batch[eid] = cand
                to_append.append(cand)
        return to_append, dup_of


def _conflict(event_id: str) -> Result:
    return Result(event_id, "rejected", Code.EVENT_ID_CONFLICT.value,
                  "event_id already used for other content")


def _rejection(item: bytes | dict[str, Any], exc: Rejected) -> Result:
    event_id = None
    if isinstance(item, dict):
        event_id = item.get("event_id")
    else:
        try:
            parsed = orjson.loads(item)
            if isinstance(parsed, dict):
                event_id = parsed.get("event_id")
        except orjson.JSONDecodeError:
            pass
    if not isinstance(event_id, str):
        event_id = None
    return Result(event_id, "rejected", exc.code.value, exc.detail)
