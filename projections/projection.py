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

from collections.abc import Callable, Sequence

from eventsourcing.persistence import Tracking
from eventsourcing.projection import Projection

from ledger.log.base import StoredEvent
from projections import breaches, consents, controllers, processing, recipients, rights, ropa
from projections import transfers as transfer_model
from projections.batch import Batch, Event
from projections.store import ReadModelStore, Writes

Handler = Callable[[Batch, Event], None]

HANDLERS: dict[str, Handler] = {}
for _module in (controllers, recipients, ropa, consents, processing, transfer_model, rights,
                breaches):
    HANDLERS.update(_module.HANDLERS)


class AuditProjection(Projection[ReadModelStore]):
    name = "auditledger"

    def __init__(self, view: ReadModelStore) -> None:
        super().__init__(view)
        self.batch = Batch(view)

    def apply(self, ev: Event) -> None:
        """Fold one event into the in-memory batch (no I/O unless a cache misses)."""
        controllers.count(self.batch, ev)
        handler = HANDLERS.get(ev.type)
        if handler is not None:  # subject.erased: nothing to project (keys are shredded)
            handler(self.batch, ev)

    def process_event(self, domain_event: StoredEvent, tracking: Tracking) -> None:  # type: ignore[override]
        self.process_batch([domain_event], tracking)

    def prepare(self, events: Sequence[StoredEvent]) -> Writes:
        """Apply ``events`` (in log order) in memory; the writes still have to be committed
        (with the batch's position) before anything is visible."""
        try:
            for stored in events:
                self.apply(Event.from_stored(stored))
            return self.batch.take()
        except BaseException:
            self.batch.discard()
            raise

    def process_batch(self, events: Sequence[StoredEvent], tracking: Tracking) -> None:
        """Apply ``events`` and commit them with ``tracking`` atomically. On any failure
        nothing is written and the caches are dropped."""
        writes = self.prepare(events)
        try:
            self.view.commit(writes, tracking)
        except BaseException:
            self.batch.discard()
            raise
