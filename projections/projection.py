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
)
from projections import transfers as transfer_model
from projections.batch import Batch, Event, row_of
from projections.prefetch import Row, Tally
from projections.store import ReadModelStore, Writes

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
                if type_ in shadow:
                    kept, b.writes = b.writes, Writes()
                    handler(b, Event(seq, type_, controller, body))
                    b.writes = kept
                else:
                    handler(b, Event(seq, type_, controller, body))
            if not shadow:
                controllers.count(b, rows, tally)
            return b.take()
        except BaseException:
            b.discard()
            raise

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
