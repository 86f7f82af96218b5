"""The audit projection: one pass over the log feeds every read model.

It is an ``eventsourcing.projection.Projection`` whose view is a ``ReadModelStore`` (itself
the library's tracking recorder). The library's ``process_event(event, tracking)`` applies
one event; ``process_batch`` is ours: it applies many events in memory and commits their
writes and the last position in one transaction, which is what makes a replay fast while
keeping exactly-once (see ``projections.store``).

One projection rather than one per read model, on purpose: the consent check of a
processing event needs the consent history and the activity, the controller's time zone
decides a transfer's day — running them in one ordered pass makes every cross-model rule
see exactly the log prefix before its event.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Sequence

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.log.base import StoredEvent
from projections import (
    breaches,
    consents,
    controllers,
    erasure,
    processing,
    recipients,
    rights,
    ropa,
    unprocessable,
)
from projections import transfers as transfer_model
from projections.batch import Batch, Event, row_of
from projections.prefetch import Row, Tally
from projections.store import ReadModelStore, Writes, dumps
from projections.unprocessable import UNREADABLE

Handler = Callable[[Batch, Event], None]

HANDLERS: dict[str, Handler] = {}
for _module in (controllers, recipients, ropa, consents, erasure, processing, transfer_model,
                rights, breaches):
    HANDLERS.update(_module.HANDLERS)


class AuditProjection(Projection[ReadModelStore]):
    name = "auditledger"

    def __init__(self, view: ReadModelStore) -> None:
        super().__init__(view)
        self.batch = Batch(view)

    def prepare(self, rows: Sequence[Row], tally: Tally | None = None,
                shadow: Collection[str] = ()) -> Writes:
        """Apply log rows (in log order) in memory; the writes still have to be committed
        (with the batch's position) before anything is visible. An event is decoded only
        when a handler wants it; every event is counted (``tally``: the counts the reader
        process made of these rows, if it did).

        ``shadow`` (the second applier of a split catch-up, ``projections.shard``): events
        of these types change the caches only, their writes are the other applier's; and
        nothing is counted (the other applier counts whole chunks)."""
        b = self.batch
        handlers = HANDLERS
        try:
            for seq, type_, controller, body in rows:
                handler = handlers.get(type_)
                if handler is None:
                    continue
                # One event's failure is that event's and its controller's alone: it is
                # not applied, an ``unprocessable_event`` finding records it, and the
                # batch goes on (``projections.unprocessable``). try costs nothing in
                # Python 3.11 until something is raised.
                # Only errors of the event's values are caught: a store that cannot be
                # read (say) fails the batch as before, it is no fact about the event.
                try:
                    ev = Event(seq, type_, controller, body)
                except UNREADABLE as exc:
                    if type_ not in shadow:  # a broadcast event: the runner's records it
                        self._unprocessable(seq, type_, controller, body, exc)
                    continue
                if type_ in shadow:
                    kept, b.writes = b.writes, Writes()
                    # A failure here is the other applier's to record (it writes these).
                    with contextlib.suppress(*UNREADABLE):
                        handler(b, ev)
                    b.writes = kept
                    continue
                try:
                    handler(b, ev)
                except UNREADABLE as exc:
                    _drop_rows(b.writes, seq)
                    self._unprocessable(seq, type_, controller, body, exc)
            if not shadow:
                controllers.count(b, rows, tally)
            return b.take()
        except BaseException:
            b.discard()
            raise

    def _unprocessable(self, seq: int, type_: str, controller: str, body: bytes | str,
                       exc: BaseException) -> None:
        doc = unprocessable.finding_doc(type_, unprocessable.event_id_of(body), exc)
        self.batch.writes.findings.append((controller, seq, unprocessable.CODE, dumps(doc)))

    def process_rows(self, rows: Sequence[Row], tracking: Tracking) -> None:
        """Apply ``rows`` and commit them with ``tracking`` atomically. On any failure
        nothing is written and the caches are dropped."""
        writes = self.prepare(rows)
        try:
            self.view.commit(writes, tracking)
        except BaseException:
            self.batch.discard()
            raise

    def process_batch(self, events: Sequence[StoredEvent], tracking: Tracking) -> None:
        """``process_rows`` for full stored events."""
        self.process_rows([row_of(e) for e in events], tracking)

    def process_event(self, domain_event: StoredEvent, tracking: Tracking) -> None:  # type: ignore[override]
        self.process_batch([domain_event], tracking)


def _drop_rows(writes: Writes, seq: int) -> None:
    """Take back the rows a failed handler appended for its event (the last ones with its
    ``seq``). Entity changes need no undoing: every handler reads all it needs from the
    event before it changes an entity, so one that raises has changed none."""
    for rows, col in ((writes.consents, 4), (writes.records, 2), (writes.findings, 1)):
        while rows and rows[-1][col] == seq:
            rows.pop()
