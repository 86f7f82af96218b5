"""The record of processing activities (GDPR Art. 30(1)), with completeness per activity.

Completeness is judged when asked, not stored: it depends on the controller entry (name
and contact, Art. 30(1)(a)) and on the recipients register, which change independently of
the activity. What Art. 30(1) requires of an entry, and the name of each missing item:

- ``controller_name``, ``controller_contact`` (contact or DPO contact role) — (a)
- ``purposes`` — (b); ``subject_categories``, ``data_categories`` — (c)
- ``recipients`` (the list; may be empty when there are none), each registered — (d)
- ``transfers``: every declared transfer has a safeguard other than ``none``, and every
  recipient processing outside the EEA is covered by a declared transfer — (e)
- ``retention`` — (f); ``security_measures`` — (g)
"""

from __future__ import annotations

from datetime import date
from typing import Any

from projections.batch import Batch, Event
from projections.legal.transfers import in_eea

FIELDS = (
    "name", "description", "purposes", "lawful_basis", "special_category_condition",
    "data_categories", "subject_categories", "recipients", "transfers", "retention",
    "security_measures", "dpia_ref",
)


def _declared(b: Batch, ev: Event) -> None:
    aid = ev.data["activity_id"]

    def change(doc: dict[str, Any]) -> None:
        for f in FIELDS:
            doc[f] = ev.data.get(f)
        doc.update(activity_id=aid, status="active", declared_at=ev.at, retired_at=None)
        doc.setdefault("events", []).append(ev.event_id)

    b.update("activity", ev.controller, aid, change)


def _amended(b: Batch, ev: Event) -> None:
    aid = ev.data["activity_id"]

    def change(doc: dict[str, Any]) -> None:
        doc.setdefault("activity_id", aid)
        doc.setdefault("status", "undeclared")  # amended before declared: kept, flagged
        for f in FIELDS:
            if f in ev.data:
                doc[f] = ev.data[f]
        doc["amended_at"] = ev.at
        doc.setdefault("events", []).append(ev.event_id)

    b.update("activity", ev.controller, aid, change)


def _retired(b: Batch, ev: Event) -> None:
    aid = ev.data["activity_id"]

    def change(doc: dict[str, Any]) -> None:
        doc.setdefault("activity_id", aid)
        doc["status"] = "retired"
        doc["retired_at"] = ev.at
        doc.setdefault("events", []).append(ev.event_id)

    b.update("activity", ev.controller, aid, change)


HANDLERS = {
    "processing_activity.declared": _declared,
    "processing_activity.amended": _amended,
    "processing_activity.retired": _retired,
}


def as_list(value: Any) -> list[Any]:
    """``lawful_basis`` and ``retention`` may be one value or a list of them."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _outside_eea(country: str | None, on: date) -> bool:
    if not country:
        return False
    try:
        return not in_eea(country, on)
    except ValueError:
        return True  # an unknown code cannot be shown to be in the EEA


def missing_items(
    activity: dict[str, Any],
    controller: dict[str, Any] | None,
    recipients: dict[str, dict[str, Any]],
    today: date,
) -> list[str]:
    """What the Art. 30(1) entry lacks, as stable item names (empty = complete)."""
    missing: list[str] = []
    ctl = controller or {}
    if not ctl.get("name"):
        missing.append("controller_name")
    if not (ctl.get("contact") or ctl.get("dpo_contact_role")):
        missing.append("controller_contact")
    for f in ("purposes", "subject_categories", "data_categories"):
        if not activity.get(f):
            missing.append(f)
    if activity.get("recipients") is None:
        missing.append("recipients")
    transfers = activity.get("transfers") or []
    covered = {t.get("recipient_id") for t in transfers}
    for rid in activity.get("recipients") or []:
        rec = recipients.get(rid)
        if rec is None or rec.get("status") not in ("active",):
            missing.append(f"recipient_unregistered:{rid}")
        elif _outside_eea(rec.get("country"), today) and rid not in covered:
            missing.append(f"transfer_undeclared:{rid}")
    for t in transfers:
        if t.get("mechanism") in (None, "none"):
            missing.append(f"transfer_safeguard:{t.get('recipient_id')}")
    if not as_list(activity.get("retention")):
        missing.append("retention")
    if not activity.get("security_measures"):
        missing.append("security_measures")
    return missing


def view(
    activity: dict[str, Any],
    controller: dict[str, Any] | None,
    recipients: dict[str, dict[str, Any]],
    today: date,
) -> dict[str, Any]:
    """One Art. 30 entry as the API returns it, with ``complete`` and ``missing``."""
    missing = missing_items(activity, controller, recipients, today)
    out = {"activity_id": activity["activity_id"], "status": activity.get("status")}
    out.update({f: activity.get(f) for f in FIELDS})
    out.update(
        declared_at=activity.get("declared_at"),
        retired_at=activity.get("retired_at"),
        complete=not missing,
        missing=missing,
        evidence=list(activity.get("events", [])),
    )
    return out
