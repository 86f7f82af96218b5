"""Ingest: every check DESIGN.md lists, in its order, then one durable append.

Stateless checks reject an event with a stable code and store nothing of it; the good
events of the same batch are still appended. Stateful oddities (a withdrawal without a
consent, a notification for an unknown breach) are *not* checked here: they are evidence,
and the projections raise findings about them.

The invariant this module keeps: whatever ingest accepts, ``auditledger verify`` accepts.
So the registry (who may sign what) changes only by administration events that are
certain to be stored, in the order they will be stored: an admin event is checked in full
(signature, clock, idempotency against the log and against earlier events of the batch)
before anything after it in the batch is checked against the registry it produces. A
rejected, duplicate or conflicting admin event changes nothing. One event that makes the
checking code itself fail is that event's rejection, never the batch's.

Idempotency is per controller: ``(controller, event_id)`` names an event, so one tenant's
ids neither collide with nor reveal another's.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson

from ledger.canonical import signed_and_unsigned
from ledger.clock import Clock, format_rfc3339, parse_rfc3339
from ledger.codes import MAX_CLOCK_SKEW_SECONDS, MAX_ENTRY_BYTES, MAX_EVENT_BYTES, Code
from ledger.encoding import b64
from ledger.keystore import ERASED_TYPE, KeyStore
from ledger.log.base import Log, Prepared, StaleLog, StoredEvent
from ledger.registry import ADMIN, ADMIN_TYPES, Registry, RegistryError
from ledger.schemas import SchemaError, Schemas
from ledger.sealcheck import SealedChecker, SealedInvalid
from ledger.signing import DOMAIN
from ledger.strictjson import DEPTH_DETAIL, duplicate_detail, duplicate_name
from ledger.verifier import CHUNK, Verifier

log = logging.getLogger(__name__)

DEFAULT_MAX_LATENESS = timedelta(days=3)
_MAX_SKEW = timedelta(seconds=MAX_CLOCK_SKEW_SECONDS)


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
        """The answer's JSON object; fields that are None are left out. Built field by
        field (no loop over names): the API answers every event with one."""
        out: dict[str, Any] = {"event_id": self.event_id, "status": self.status}
        if self.code is not None:
            out["code"] = self.code
        if self.detail is not None:
            out["detail"] = self.detail
        if self.index is not None:
            out["index"] = self.index
        if self.leaf_hash is not None:
            out["leaf_hash"] = self.leaf_hash
        if self.controller is not None:
            out["controller"] = self.controller
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
    # None until known: passed every stateless check (signature and clock included).
    ok: bool | None = None
    error: Rejected | None = field(default=None, repr=False)

    @property
    def ident(self) -> tuple[str, str]:
        """What names an event: its controller and its event_id."""
        return self.prepared.controller, self.prepared.event_id


class _SignatureStream:
    """Sends signatures to the verifier in chunks as candidates arrive, so checking them
    overlaps with parsing the rest of the batch."""

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier
        self.pending: list[_Candidate] = []
        self.waits: dict[int, Callable[[], list[bool]]] = {}  # pos -> its chunk's answer
        self.chunks: dict[int, list[_Candidate]] = {}
        self.verdicts: dict[int, bool] = {}

    def _send(self) -> None:
        chunk, self.pending = self.pending, []
        wait = self.verifier.start([(c.key, c.message, c.env["sig"]) for c in chunk])
        for c in chunk:
            self.waits[c.pos] = wait
            self.chunks[c.pos] = chunk

    def add(self, cand: _Candidate) -> None:
        self.pending.append(cand)
        if len(self.pending) >= CHUNK:
            self._send()

    def verdict(self, cand: _Candidate) -> bool:
        """Whether ``cand``'s signature verifies (waits for its chunk, sending it first
        if it is still being filled)."""
        if cand.pos not in self.verdicts:
            if cand.pos not in self.waits:
                self._send()
            chunk, answers = self.chunks[cand.pos], self.waits[cand.pos]()
            for c, ok in zip(chunk, answers, strict=True):
                self.verdicts[c.pos] = ok
        return self.verdicts[cand.pos]


@dataclass(slots=True)
class Staged:
    """A batch whose lock-free checks are done (``Ingestor.prepare``) and whose
    signatures are being checked, waiting for ``Ingestor.commit``.

    ``serial``: the batch holds an administration event, or was prepared against a
    registry that has changed since (``epoch``): ``commit`` then checks it again from the
    start, in order, exactly as ``submit`` does."""

    items: Sequence[bytes | dict[str, Any]]
    epoch: int
    serial: bool = False
    reg: Registry | None = None
    results: list[Result | None] = field(default_factory=list)
    ordered: list[_Candidate] = field(default_factory=list)
    signatures: _SignatureStream | None = None


class Ingestor:
    """Validates and appends. Holds the registry view, kept in step with the log.

    ``max_lateness``: how long after ``occurred_at`` an event may still arrive (None: no
    bound). ``import_until``: while the clock is before it, events of any age are accepted
    (a window an admin opens to import history; it closes by itself). ``keystore``: the
    key store sealed fields are checked against (``sealed_invalid``) and a stored
    ``subject.erased`` destroys keys in (ledger/sealcheck.py); None for tools that have
    none: sealed fields are then only schema-checked and erasures only recorded.
    """

    def __init__(self, log: Log, schemas: Schemas, clock: Clock, verifier: Verifier,
                 max_lateness: timedelta | None = DEFAULT_MAX_LATENESS,
                 import_until: datetime | None = None,
                 keystore: KeyStore | None = None) -> None:
        self.log, self.schemas, self.clock, self.verifier = log, schemas, clock, verifier
        self.max_lateness, self.import_until = max_lateness, import_until
        self.sealed = SealedChecker(keystore) if keystore is not None else None
        self.registry = Registry()
        # Bumped whenever ``registry`` changes: a batch prepared against an older one is
        # checked again (``commit``). The registry is never changed in place once a
        # batch may be prepared against it (copy on write), so ``prepare`` needs no lock.
        self.epoch = 0
        self._seen_seq = 0
        self.refresh()

    def refresh(self) -> None:
        """Fold administration events other writers appended since we last looked, and
        forget cached data keys of subjects they erased (the writer that stored an erasure
        destroys its keys; a restart re-applies any it did not)."""
        last = self.log.last_seq()
        types = sorted(ADMIN_TYPES | {ERASED_TYPE}) if self.sealed else sorted(ADMIN_TYPES)
        reg = self.registry
        for ev in self.log.events(after_seq=self._seen_seq, types=types):
            if ev.seq > last:
                break
            if ev.type == ERASED_TYPE:
                assert self.sealed is not None
                self.sealed.erased([ev], apply=False)
            else:
                if reg is self.registry:
                    reg = reg.copy()
                reg.apply(ev.envelope())
        self._set_registry(reg)
        self._seen_seq = last

    def reread(self) -> None:
        """Forget the registry view and build it again from the log: appends that were
        aborted (a Kafka transaction) may have advanced it."""
        self._set_registry(Registry())
        self._seen_seq = 0
        self.refresh()

    def _set_registry(self, reg: Registry) -> None:
        if reg is not self.registry:
            self.registry, self.epoch = reg, self.epoch + 1

    def submit(self, items: Sequence[bytes | dict[str, Any]]) -> list[Result]:
        """Check and append a batch; one result per item, in order."""
        for _ in range(10):
            try:
                return self._submit(items)
            except StaleLog:
                self.refresh()
        raise RuntimeError("log kept moving under this writer; giving up")

    # -- the same, in two steps, so that one batch is prepared while another commits ----

    def prepare(self, items: Sequence[bytes | dict[str, Any]]) -> Staged:
        """The checks that read nothing but the registry: parsing, size, schema, the
        signing key, canonical bytes and their hash; starts the signature checks. Needs
        no lock, so the API runs it for the next batch while the last one commits. An
        administration event makes the batch ``serial``: it changes the registry the
        events after it are checked against, and ``commit`` checks it in order."""
        # The epoch is read before the registry (``_set_registry`` writes them in the
        # other order): a registry newer than its epoch only costs a second check.
        staged = Staged(items, self.epoch, reg=self.registry)
        staged.results = [None] * len(items)
        staged.signatures = signatures = _SignatureStream(self.verifier)
        for pos, item in enumerate(items):
            try:
                cand = self._prepare_safely(pos, item, staged.reg)
            except Rejected as exc:
                staged.results[pos] = _rejection(item, exc)
                continue
            if cand.prepared.type in ADMIN_TYPES:
                staged.serial = True
                return staged
            staged.ordered.append(cand)
            signatures.add(cand)
        return staged

    def commit(self, staged: Staged) -> list[Result]:
        """Finish a prepared batch under the writer's lock: the signatures' answers, the
        clock, sealed fields, idempotency, then one durable append. The results are those
        ``submit(staged.items)`` gives now."""
        if staged.serial or staged.epoch != self.epoch:
            return self.submit(staged.items)
        expect_seq = self.log.last_seq()
        if expect_seq != self._seen_seq:
            self.refresh()
            if staged.epoch != self.epoch:
                return self.submit(staged.items)
        try:
            return self._finish(staged.items, list(staged.results), staged.ordered,
                                staged.signatures, self.registry, expect_seq,
                                self.clock.now())
        except StaleLog:
            self.refresh()
            return self.submit(staged.items)

    # -- the checks, in DESIGN.md's order ----------------------------------------------

    def _parse(self, item: bytes | dict[str, Any]) -> dict[str, Any]:
        if isinstance(item, dict):
            env = item
            try:
                size = len(orjson.dumps(env))
            except TypeError:  # orjson writes at most 255 levels
                raise Rejected(Code.SCHEMA_VIOLATION, f"envelope: {DEPTH_DETAIL}") from None
            if size > MAX_EVENT_BYTES:
                raise Rejected(Code.TOO_LARGE, f"event exceeds {MAX_EVENT_BYTES} bytes")
        else:
            if len(item) > MAX_EVENT_BYTES:
                raise Rejected(Code.TOO_LARGE, f"event exceeds {MAX_EVENT_BYTES} bytes")
            try:
                env = orjson.loads(item)
            except orjson.JSONDecodeError as exc:
                if "depth limit" in str(exc):
                    raise Rejected(Code.SCHEMA_VIOLATION,
                                   f"envelope: {DEPTH_DETAIL}") from None
                raise Rejected(Code.MALFORMED_JSON, str(exc)) from None
            name = duplicate_name(item, env)
            if name is not None:
                raise Rejected(Code.MALFORMED_JSON, duplicate_detail(name))
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
        if len(body) > MAX_ENTRY_BYTES:
            raise Rejected(Code.TOO_LARGE, f"the stored event (canonical, with sig) exceeds "
                           f"{MAX_ENTRY_BYTES} bytes, a tlog-tiles entry's limit")
        message = DOMAIN + unsigned
        prepared = Prepared(
            env["event_id"], env["controller"], env["type"], env["producer"],
            env["occurred_at"], body, hashlib.sha256(message).digest(),
        )
        return _Candidate(pos, env, prepared, key, message, occurred)

    def _prepare_safely(
        self, pos: int, item: bytes | dict[str, Any], reg: Registry
    ) -> _Candidate:
        """``_prepare``; an input the checks themselves fail on is that event's rejection
        (logged, so the hole gets closed), never an error for the whole batch."""
        try:
            return self._prepare(pos, item, reg)
        except Rejected:
            raise
        except Exception as exc:
            log.exception("ingest: checking event %d of a batch failed", pos)
            raise Rejected(
                Code.SCHEMA_VIOLATION,
                f"envelope: the event could not be checked ({type(exc).__name__}); "
                "it was not stored",
            ) from None

    def _late_checks(self, cand: _Candidate, sig_ok: bool, now: datetime) -> None:
        if not sig_ok:
            raise Rejected(Code.BAD_SIGNATURE, "signature does not verify with the producer key")
        if cand.occurred - now > _MAX_SKEW:
            raise Rejected(
                Code.CLOCK_SKEW,
                f"occurred_at is more than {MAX_CLOCK_SKEW_SECONDS} s in the future",
            )
        late = self.max_lateness
        if late is not None and now - cand.occurred > late and not (
            self.import_until is not None and now < self.import_until
        ):
            raise Rejected(
                Code.CLOCK_SKEW,
                f"occurred_at is more than {_duration(late)} in the past (the ledger's "
                "max_lateness_seconds; history is imported in an import window, see "
                "docs/design.md)",
            )

    def _settle(self, cand: _Candidate, signatures: _SignatureStream | None,
                now: datetime) -> bool:
        """Whether ``cand`` passes every stateless check; decided once, then remembered."""
        if cand.ok is None:
            if signatures is None:
                sig_ok = self.verifier.verify([(cand.key, cand.message, cand.env["sig"])])[0]
            else:
                sig_ok = signatures.verdict(cand)
            try:
                self._late_checks(cand, sig_ok, now)
                if self.sealed is not None and "sealed" in cand.env:
                    self._check_sealed(cand)
                cand.ok = True
            except Rejected as exc:
                cand.ok, cand.error = False, exc
        return cand.ok

    def _check_sealed(self, cand: _Candidate) -> None:
        """After the signature (an unsigned event never costs a key-store read): the
        sealed field opens under a data key of its subject, or is ``sealed_invalid``."""
        assert self.sealed is not None
        try:
            self.sealed.check(cand.env)
        except SealedInvalid as exc:
            raise Rejected(exc.code, exc.detail) from None
        except Exception as exc:
            log.exception("ingest: checking the sealed field of event %d failed", cand.pos)
            raise Rejected(Code.SEALED_INVALID,
                           f"sealed: the key store could not be read ({type(exc).__name__});"
                           " the event was not stored, retry") from None

    def _submit(self, items: Sequence[bytes | dict[str, Any]]) -> list[Result]:
        expect_seq = self.log.last_seq()
        if expect_seq != self._seen_seq:
            self.refresh()
        now = self.clock.now()
        results: list[Result | None] = [None] * len(items)
        reg = self.registry
        ordered: list[_Candidate] = []  # survivors of the checks before the signature
        same_id: dict[tuple[str, str], list[_Candidate]] = {}
        signatures = _SignatureStream(self.verifier)
        for pos, item in enumerate(items):
            try:
                cand = self._prepare_safely(pos, item, reg)
            except Rejected as exc:
                results[pos] = _rejection(item, exc)
                continue
            ordered.append(cand)
            earlier = same_id.setdefault(cand.ident, [])
            if cand.prepared.type not in ADMIN_TYPES:
                signatures.add(cand)
            elif self._settle(cand, None, now) and self._is_new(cand, earlier, signatures,
                                                                 now):
                # Certain to be appended, at this place: later events of the batch are
                # checked against the registry it makes.
                if reg is self.registry:
                    reg = reg.copy()
                try:
                    reg.apply(cand.env)  # computes everything before it changes anything
                except Exception as exc:
                    log.exception("ingest: applying admin event %d failed", pos)
                    cand.ok, cand.error = False, Rejected(
                        Code.SCHEMA_VIOLATION,
                        f"data: the administration event could not be applied "
                        f"({type(exc).__name__}); it was not stored")
            earlier.append(cand)
        return self._finish(items, results, ordered, signatures, reg, expect_seq, now)

    def _finish(self, items: Sequence[bytes | dict[str, Any]], results: list[Result | None],
                ordered: list[_Candidate], signatures: _SignatureStream | None,
                reg: Registry, expect_seq: int, now: datetime) -> list[Result]:
        """The checks that need the signatures' answers and the log, then the append."""
        survivors: list[_Candidate] = []
        for cand in ordered:
            if self._settle(cand, signatures, now):
                survivors.append(cand)
            else:
                assert cand.error is not None
                results[cand.pos] = _rejection(items[cand.pos], cand.error)
        to_append, dup_of = self._idempotency(survivors, results)
        stored = self.log.append(
            [c.prepared for c in to_append], format_rfc3339(now), expect_seq
        )
        by_ident = {(ev.controller, ev.event_id): ev for ev in stored}
        for cand, ev in zip(to_append, stored, strict=True):
            results[cand.pos] = Result.stored(ev)
        for pos, ident in dup_of.items():
            results[pos] = Result.stored(by_ident[ident], "duplicate")
        self._set_registry(reg)
        self._seen_seq = stored[-1].seq if stored else expect_seq
        if self.sealed is not None:
            self.sealed.erased(stored)  # durable now: destroy what they erase
        return [r for r in results if r is not None]

    def _is_new(self, cand: _Candidate, earlier: list[_Candidate],
                signatures: _SignatureStream, now: datetime) -> bool:
        """Whether ``cand`` (which passed every stateless check) will be appended: no
        event of its controller with its id in the log, nor earlier in the batch (an
        earlier one that fails its own checks does not count). The same decision
        ``_idempotency`` reaches for it afterwards."""
        if self.log.lookup(cand.prepared.controller, [cand.prepared.event_id]):
            return False
        return not any(self._settle(e, signatures, now) for e in earlier)

    def _idempotency(
        self, survivors: list[_Candidate], results: list[Result | None]
    ) -> tuple[list[_Candidate], dict[int, tuple[str, str]]]:
        """Same (controller, event_id) + same bytes → the first receipt; other bytes →
        conflict."""
        wanted: dict[str, list[str]] = {}
        for c in survivors:
            wanted.setdefault(c.prepared.controller, []).append(c.prepared.event_id)
        existing: dict[tuple[str, str], StoredEvent] = {}
        for controller, ids in wanted.items():
            for eid, ev in self.log.lookup(controller, ids).items():
                existing[(controller, eid)] = ev
        first_in_batch: dict[tuple[str, str], _Candidate] = {}
        to_append: list[_Candidate] = []
        dup_of: dict[int, tuple[str, str]] = {}
        for cand in survivors:
            ident, fingerprint = cand.ident, cand.prepared.canon_hash
            prior = existing.get(ident)
            earlier = first_in_batch.get(ident)
            if prior is not None:
                if prior.canon_hash == fingerprint:
                    results[cand.pos] = Result.stored(prior, "duplicate")
                else:
                    results[cand.pos] = _conflict(ident[1])
            elif earlier is not None:
                if earlier.prepared.canon_hash == fingerprint:
                    dup_of[cand.pos] = ident
                else:
                    results[cand.pos] = _conflict(ident[1])
            else:
                first_in_batch[ident] = cand
                to_append.append(cand)
        return to_append, dup_of


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} hours"
    return f"{seconds} s"


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
    if not isinstance(event_id, str) or len(event_id) > 200:
        event_id = None
    return Result(event_id, "rejected", exc.code.value, exc.detail)
