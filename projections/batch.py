"""The in-memory side of a projection batch: decoded events, entity and consent caches, and
the pending writes that one transaction will commit.

Why a cache: replaying a million events at >100k events/s leaves a few microseconds per
event, far less than a database round trip. Handlers therefore read and change plain
dicts held here; ``take()`` hands every changed row to the store at the end of the batch,
which writes them (one statement per table) together with the new position.

The cache is only correct while this process is the single writer and every batch it
applied was committed; the runner calls ``discard()`` when a commit fails, and the next
read goes to the store again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ledger.clock import format_rfc3339
from ledger.log.base import StoredEvent
from projections.prefetch import Row
from projections.store import ReadModelStore, Writes, dumps
from projections.unprocessable import Unprocessable, check, instant

_MISSING = object()


def utc(ts: str) -> str:
    """An RFC 3339 instant written the one way (UTC, milliseconds, ``Z``): such strings
    sort in time order, so the stores can compare them as text. ``ValueError`` when
    ``ts`` cannot be interpreted (``projections.unprocessable.instant``); text already
    in that form is returned as it is (events are checked when they are made)."""
    if len(ts) == 24 and ts[-1] == "Z" and ts[10] == "T" and ts[19] == ".":
        return ts
    return format_rfc3339(instant(ts))


class _Envelope(msgspec.Struct, gc=False):
    """The fields of an envelope the projections read; the decoder skips the others
    (``sig``, ``spec``, ``producer``, and ``type``/``controller``, which the log row holds)
    without making objects for them: a third less decoding than a whole ``dict``."""

    event_id: str
    occurred_at: str
    subject: str | None = None
    data: dict[str, Any] = {}


_decode = msgspec.json.Decoder(_Envelope).decode


class Event:
    """One stored event as the projections see it, made from a log row ``(seq, type,
    controller, body)``: ``event_id``, ``occurred_at`` and ``subject`` come from the
    envelope (the log's columns are copies of them). A plain slotted class: a frozen
    dataclass sets every field through ``object.__setattr__``, which a million events
    notice.

    Made only from an event the read side can interpret: an envelope that does not
    decode, or a time in it that ``projections.unprocessable.check`` refuses, raises
    ``Unprocessable`` here, before any handler sees it."""

    __slots__ = (
        "at",
        "controller",
        "data",
        "event_id",
        "occurred_at",
        "seq",
        "subject",
        "type",
    )

    def __init__(self, seq: int, type_: str, controller: str, body: bytes | str) -> None:
        try:
            env = _decode(body)
        except msgspec.DecodeError as exc:  # ValidationError is one too
            raise Unprocessable("envelope", str(exc)) from None
        check(type_, env.occurred_at, env.data)
        self.seq = seq
        self.type = type_
        self.controller = controller
        self.event_id = env.event_id
        at = env.occurred_at
        self.occurred_at = at  # as written by the producer
        # In UTC (``utc``, its fast path inlined): the instant rules compare.
        self.at = at if len(at) == 24 and at[-1] == "Z" and at[10] == "T" and at[19] == "." else (
            utc(at))
        self.subject = env.subject
        self.data = env.data


def present(doc: dict[str, Any], data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """``doc`` with the fields of ``data`` named in ``names`` that are set (not null):
    stored documents leave nulls out (``projections.store.RECORD_FIELDS``)."""
    get = data.get
    for name in names:
        value = get(name)
        if value is not None:
            doc[name] = value
    return doc


def row_of(ev: StoredEvent) -> Row:
    """The row the projections read, from a full stored event."""
    return (ev.seq, ev.type, ev.controller, ev.body)


#: A consent history row: (purpose, at, seq, event_id, action, doc)
ConsentRow = tuple[str, str, int, str, str, dict[str, Any]]


class Batch:
    """Caches that outlive a batch, and the writes of the current one."""

    def __init__(self, store: ReadModelStore, cache_limit: int = 200_000) -> None:
        self.store = store
        self.cache_limit = cache_limit
        # When the store was empty at start, the cache is the whole truth: misses are
        # known absences and need no round trip (a rebuild is all misses).
        self.authoritative = False
        self._entities: dict[tuple[str, str, str], Any] = {}
        self._consents: dict[str, dict[str, list[ConsentRow]]] = {}
        # (controller, subject) -> (keys_destroyed_at, event_id) of its erasure, or None
        self._erasures: dict[tuple[str, str], tuple[str, str] | None] = {}
        self._consent_count = 0  # histories cached, over all controllers
        self.writes = Writes()
        #: Set when ``take`` dropped the caches to bound memory (see there).
        self.cold = False

    # -- entities ------------------------------------------------------------------------
    def get(self, kind: str, controller: str, key: str) -> dict[str, Any] | None:
        k = (kind, controller, key)
        doc = self._entities.get(k, _MISSING)
        if doc is _MISSING:
            doc = None if self.authoritative else self.store.entity(kind, controller, key)
            self._entities[k] = doc
        return doc  # type: ignore[return-value]

    def put(self, kind: str, controller: str, key: str, doc: dict[str, Any]) -> None:
        self._entities[(kind, controller, key)] = doc
        self.writes.entities[(kind, controller, key)] = doc

    def update(
        self,
        kind: str,
        controller: str,
        key: str,
        change: Callable[[dict[str, Any]], None],
        new: Callable[[], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Apply ``change`` to the entity (created by ``new`` or as ``{}``) and mark it."""
        doc = self.get(kind, controller, key)
        if doc is None:
            doc = new() if new else {}
        change(doc)
        self.put(kind, controller, key, doc)
        return doc

    # -- consents ------------------------------------------------------------------------
    def consent_history(self, controller: str, subject: str) -> list[ConsentRow]:
        # Per controller, then per subject: a million lookups in one dict of
        # ``(controller, subject)`` tuples spent an eighth of a replay hashing and
        # comparing tuples.
        histories = self._consents.get(controller)
        if histories is None:
            histories = self._consents[controller] = {}
        rows = histories.get(subject)
        if rows is None:
            rows = [] if self.authoritative else list(self.store.consent_rows(controller, subject))
            histories[subject] = rows
            self._consent_count += 1
        return rows

    # -- erasures --------------------------------------------------------------------------
    def erasure(self, controller: str, subject: str) -> tuple[str, str] | None:
        """``(keys_destroyed_at, event_id)`` of the subject's first erasure, or None."""
        if not self._erasures and self.authoritative:
            return None  # the common case of a rebuild: nobody erased yet
        k = (controller, subject)
        found = self._erasures.get(k, _MISSING)
        if found is _MISSING:
            found = None
            if not self.authoritative:
                docs = self.store.records(controller, "erasure", subject=subject)
                if docs:
                    first = min(docs, key=lambda d: d["keys_destroyed_at"])
                    found = (first["keys_destroyed_at"], first["event_id"])
            self._erasures[k] = found
        return found  # type: ignore[return-value]

    def note_erasure(self, controller: str, subject: str, at: str, event_id: str) -> None:
        current = self.erasure(controller, subject)
        if current is None or at < current[0]:
            self._erasures[(controller, subject)] = (at, event_id)

    def add_consent(
        self, ev: Event, purposes: list[str], action: str, doc: dict[str, Any]
    ) -> None:
        """One history row per purpose, all sharing ``doc``."""
        assert ev.subject is not None
        history = self.consent_history(ev.controller, ev.subject)
        rows = self.writes.consents
        text = dumps(doc)
        for purpose in purposes:
            history.append((purpose, ev.at, ev.seq, ev.event_id, action, doc))
            rows.append(
                (ev.controller, ev.subject, purpose, ev.at, ev.seq, ev.event_id, action, text)
            )

    # -- append-only facts ---------------------------------------------------------------
    # Consent, record and finding documents are written as canonical JSON text the moment
    # they are made (they never change afterwards): the commit then sends plain strings,
    # which the database takes with one cheap extraction per column, where a nested
    # object would cost it a re-render (see ``projections.store``).
    def add_record(
        self, ev: Event, kind: str, key: str | None, doc: dict[str, Any]
    ) -> None:
        """``doc`` holds the record's own fields, nulls left out; ``subject``,
        ``occurred_at`` (UTC) and ``event_id`` are the row's columns."""
        self.writes.records.append(
            (ev.controller, kind, ev.seq, ev.at, ev.subject, key, ev.event_id, dumps(doc))
        )

    def add_finding(
        self, ev: Event, code: str, severity: str, detail: str, evidence: list[str]
    ) -> None:
        # ``code`` and ``controller`` are columns: ``store.findings()`` adds them back.
        doc = {"severity": severity, "detail": detail, "evidence": evidence, "at": ev.at}
        self.writes.findings.append((ev.controller, ev.seq, code, dumps(doc)))

    # -- lifecycle -----------------------------------------------------------------------
    def take(self) -> Writes:
        """The writes of this batch; the next batch starts empty. Bounds the caches."""
        writes, self.writes = self.writes, Writes()
        # Serialise now, on this thread: the cached dicts go on changing with the next
        # batch while this one commits, and a commit must hold exactly this batch's state.
        writes.entities = {k: dumps(doc) for k, doc in writes.entities.items()}
        if len(self._entities) + self._consent_count + len(self._erasures) > self.cache_limit:
            self.discard()
            # The next batch reads the store: a pipelined caller must first commit every
            # batch handed out so far (``ProjectionRunner`` does), or it reads stale state.
            self.cold = True
        return writes

    def discard(self) -> None:
        """Forget everything cached (after a failed commit, or to bound memory)."""
        self._entities.clear()
        self._consents.clear()
        self._erasures.clear()
        self._consent_count = 0
        self.writes = Writes()
        self.authoritative = False
