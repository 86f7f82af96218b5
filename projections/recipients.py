"""Recipients (processors, controllers, joint controllers, public authorities).

A removed recipient is kept with ``status: removed``: the record of processing and past
disclosures still refer to it, and an auditor must see who it was.
"""

from __future__ import annotations

from typing import Any

from projections.batch import Batch, Event

FIELDS = (
    "name", "kind", "country", "safeguard", "dpa_date", "dpa_ref", "dpf_certified",
    "description", "contact",
)


def _registered(b: Batch, ev: Event) -> None:
    rid = ev.data["recipient_id"]

    def change(doc: dict[str, Any]) -> None:
        for f in FIELDS:
            doc[f] = ev.data.get(f)
        doc.update(recipient_id=rid, status="active", registered_at=ev.at, removed_at=None)
        doc.setdefault("events", []).append(ev.event_id)

    b.update("recipient", ev.controller, rid, change)


def _updated(b: Batch, ev: Event) -> None:
    rid = ev.data["recipient_id"]

    def change(doc: dict[str, Any]) -> None:
        doc.setdefault("recipient_id", rid)
        doc.setdefault("status", "unregistered")  # updated before registered: kept, flagged
        for f in FIELDS:
            if f in ev.data:
                doc[f] = ev.data[f]
        doc["updated_at"] = ev.at
        doc.setdefault("events", []).append(ev.event_id)

    b.update("recipient", ev.controller, rid, change)


def _removed(b: Batch, ev: Event) -> None:
    rid = ev.data["recipient_id"]

    def change(doc: dict[str, Any]) -> None:
        doc.setdefault("recipient_id", rid)
        doc["status"] = "removed"
        doc["removed_at"] = ev.at
        doc["data_returned_or_deleted"] = ev.data.get("data_returned_or_deleted")
        doc.setdefault("events", []).append(ev.event_id)

    b.update("recipient", ev.controller, rid, change)


HANDLERS = {
    "recipient.registered": _registered,
    "recipient.updated": _updated,
    "recipient.removed": _removed,
}


def view(doc: dict[str, Any]) -> dict[str, Any]:
    """The recipient as the API returns it."""
    return {
        "recipient_id": doc["recipient_id"],
        "status": doc.get("status"),
        **{f: doc.get(f) for f in FIELDS},
        "registered_at": doc.get("registered_at"),
        "removed_at": doc.get("removed_at"),
        "evidence": list(doc.get("events", [])),
    }
