"""Erasure by crypto-shredding (GDPR Art. 17): ``subject.erased`` as a fact, and its check.

The ledger never deletes an event: erasure destroys the subject's keys, so what the
events said about the person can no longer be linked to them, while every proof still
verifies. What the read models keep is the fact that it happened — a ``records`` row of
kind ``erasure`` (``keys_destroyed_at`` in UTC, the ``request_id`` it answers, the key
ids) — and what it means for later events.

Finding decided when the event is applied: ``processing_after_erasure`` (high) — a
``processing.performed`` for the subject's pseudonym that occurred after its keys were
destroyed: either the keys were not destroyed, or data kept under the pseudonym are
still processed (Art. 17(1)). Evidence: the erasure, then the processing event. As with
consents, the check uses what the ledger held when the processing event was applied.

The consent view of the subject shows the erasure (``queries.consents``: ``erased``).
"""

from __future__ import annotations

from typing import Any

from projections.batch import Batch, Event, present, utc


def _erased(b: Batch, ev: Event) -> None:
    if ev.subject is None:  # the schema requires one; kept defensive
        return
    d = ev.data
    at = utc(d["keys_destroyed_at"])
    b.add_record(ev, "erasure", d.get("request_id"),
                 present({"keys_destroyed_at": at}, d, ("request_id", "key_ids", "reason")))
    b.note_erasure(ev.controller, ev.subject, at, ev.event_id)


def check_processing(b: Batch, ev: Event) -> None:
    """``processing_after_erasure`` for a processing event of an erased subject."""
    assert ev.subject is not None
    erased = b.erasure(ev.controller, ev.subject)
    if erased is not None and ev.at > erased[0]:
        b.add_finding(ev, "processing_after_erasure", "high",
                      f"processing of a subject whose keys were destroyed at {erased[0]}"
                      " (Art. 17)", [erased[1], ev.event_id])


def view(docs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The subject's erasure for the consent view: the first one (keys are destroyed
    once; a later event repeats the fact), or None."""
    if not docs:
        return None
    first = min(docs, key=lambda d: d["keys_destroyed_at"])
    return {"at": first["keys_destroyed_at"], "request_id": first["request_id"],
            "event_id": first["event_id"]}


HANDLERS = {"subject.erased": _erased}
