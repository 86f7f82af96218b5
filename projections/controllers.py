"""Controllers and their producers, from the administration events.

The controller entity also carries the settings every deadline needs (country for public
holidays, time zone, a stricter answer promise, the identity policy) and a count of the
events applied per type, which is how tests prove no event was applied twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from projections.batch import Batch, Event
from projections.legal.rights import IDENTITY_REQUEST_WITHIN_DAYS
from projections.prefetch import Row, Tally, tally

#: Fields of ``controller.registered`` shown in the read model (the admin key is not).
FIELDS = (
    "name", "country", "timezone", "org_number", "lead_authority", "dpo_contact_role",
    "holiday_calendar", "answer_within_days", "identity_policy", "contact",
    "identity_request_within_days",
)


@dataclass(frozen=True, slots=True)
class Settings:
    """What the legal rules need to know about a controller."""

    holiday_country: str
    timezone: str
    promise_days: int | None
    identity_policy: str
    identity_request_within_days: int = IDENTITY_REQUEST_WITHIN_DAYS


def settings(doc: dict[str, Any] | None) -> Settings:
    """The rules' view of a controller. Before ``controller.registered`` arrives (events
    are kept even then) the country falls back to the id's ISO prefix (``NO-921119224`` →
    ``NO``) and the zone to UTC, so a deadline is still computed and visibly provisional."""
    doc = doc or {}
    country = doc.get("holiday_calendar") or doc.get("country") or ""
    if not country:
        country = str(doc.get("controller", ""))[:2]
    return Settings(
        holiday_country=country or "NO",
        timezone=doc.get("timezone") or "UTC",
        promise_days=doc.get("answer_within_days"),
        identity_policy=doc.get("identity_policy") or "strict",
        identity_request_within_days=(doc.get("identity_request_within_days")
                                      or IDENTITY_REQUEST_WITHIN_DAYS),
    )


def count(b: Batch, rows: Sequence[Row], counted: Tally | None = None) -> None:
    """Per-controller event counts by type (every event passes here exactly once), folded
    into each controller's stats entity once per batch: counting a batch's rows costs a
    fraction of updating the entity event by event. ``counted`` is the batch's tally when
    the reader process made it already (``projections.prefetch``)."""
    counts, last = counted if counted is not None else tally(rows)
    for (controller, type_), n in counts.items():
        doc = b.get("stats", controller, "events")
        if doc is None:
            doc = {"by_type": {}, "last_seq": 0, "total": 0}
        by_type = doc["by_type"]
        by_type[type_] = by_type.get(type_, 0) + n
        doc["total"] += n
        doc["last_seq"] = last[controller]
        b.put("stats", controller, "events", doc)


def _registered(b: Batch, ev: Event) -> None:
    def change(doc: dict[str, Any]) -> None:
        for f in FIELDS:
            doc[f] = ev.data.get(f)
        doc.setdefault("registered_at", ev.at)
        doc["updated_at"] = ev.at
        doc.setdefault("events", []).append(ev.event_id)

    b.update("controller", ev.controller, ev.controller, change,
             lambda: {"controller": ev.controller})


def _producer_registered(b: Batch, ev: Event) -> None:
    pid = ev.data["producer_id"]

    def change(doc: dict[str, Any]) -> None:
        doc.update(
            producer_id=pid,
            public_key=ev.data["public_key"],
            types=list(ev.data["types"]),
            registered_at=ev.at,
            revoked_at=None,
            event_id=ev.event_id,
        )

    b.update("producer", ev.controller, pid, change)


def _producer_revoked(b: Batch, ev: Event) -> None:
    pid = ev.data["producer_id"]

    revoked_at = ev.data["revoked_at"]  # read before anything changes (projection.py)

    def change(doc: dict[str, Any]) -> None:
        doc.setdefault("producer_id", pid)
        doc["revoked_at"] = revoked_at
        doc["revoked_event_id"] = ev.event_id

    b.update("producer", ev.controller, pid, change)


HANDLERS = {
    "controller.registered": _registered,
    "producer.registered": _producer_registered,
    "producer.revoked": _producer_revoked,
}
