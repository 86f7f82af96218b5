"""Third-country transfers (GDPR Chapter V), each judged on the day it happened.

The day is the calendar date of ``occurred_at`` in the controller's time zone, and the
verdict comes from ``projections.legal.transfers.judge_transfer`` over the ``schemas/legal``
tables — the law of that day, never today's. The exporter is the event's
``exporter_country``, else the controller's registered ``country`` (an EEA-EFTA exporter
gets a warning while an adequacy decision is not yet part of the EEA Agreement); the
``contract_date`` decides the pre-2021 SCCs after 2021-09-27. Warnings are kept with the
record (``warnings``): the verdict stands, a reviewer checks them. The verdict is stored
with the record: it depends only on the event, the controller's registration before it
and the tables, so a replay reproduces it (a change to the
tables takes effect through ``auditledger projections rebuild``).

Findings: ``transfer_without_valid_mechanism``; ``recurring_transfer_on_derogation`` when a
transfer on an Art. 49 derogation is marked ``recurring`` or repeats an earlier derogation
transfer to the same recipient and destination (derogations are for occasional transfers
only, EDPB Guidelines 2/2018).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from projections.batch import Batch, Event, present
from projections.controllers import settings
from projections.legal.rights import receipt_date
from projections.legal.transfers import check_destination, judge_transfer


def _known(country: str | None) -> str | None:
    """The controller's registered country as the exporter, when the tables know it: a
    registration's odd code must not invalidate every transfer (an explicit
    ``exporter_country`` is checked, like the destination)."""
    try:
        return check_destination(country) if country else None
    except ValueError:
        return None


def _made(b: Batch, ev: Event) -> None:
    d = ev.data
    rid, cc, mech = d["recipient_id"], d["destination_country"], d["mechanism"]
    ctl = b.get("controller", ev.controller, ev.controller)
    tz = settings(ctl).timezone
    exporter = d.get("exporter_country") or _known((ctl or {}).get("country"))
    try:
        day = receipt_date(ev.occurred_at, tz)
    except ValueError:
        day = receipt_date(ev.occurred_at, "UTC")
    warnings: list[str] = []
    try:
        contract = date.fromisoformat(d["contract_date"]) if d.get("contract_date") else None
        verdict = judge_transfer(cc, mech, day, exporter, contract)
        valid, reason, occasional = verdict.valid, verdict.reason, verdict.occasional_only
        warnings = list(verdict.warnings)
    except ValueError as exc:
        valid, reason, occasional = False, str(exc), False
    b.add_record(ev, "transfer", rid, present({
        "recipient_id": rid,
        "destination_country": cc,
        "mechanism": mech,
        "data_categories": d["data_categories"],
        "judged_on": day.isoformat(),
        "valid": valid,
        "reason": reason,
        "occasional_only": occasional,
        "warnings": warnings,
    }, {**d, "exporter_country": exporter}, ("activity_id", "tia_ref", "recurring", "count",
                                             "purpose", "exporter_country", "contract_date")))
    if not valid:
        b.add_finding(ev, "transfer_without_valid_mechanism", "high",
                      f"transfer to {cc} on {mech} on {day.isoformat()}: {reason}",
                      [ev.event_id])
    if occasional:
        _check_recurring(b, ev, rid, cc, mech)


def _check_recurring(b: Batch, ev: Event, rid: str, cc: str, mech: str) -> None:
    key = f"{rid}|{cc}"
    flow: dict[str, Any] | None = b.get("derogation_flow", ev.controller, key)
    first = flow["first_event_id"] if flow else None
    if flow is None:
        flow = {"recipient_id": rid, "destination_country": cc, "first_event_id": ev.event_id,
                "count": 0}
    flow["count"] += 1
    flow["last_event_id"] = ev.event_id
    b.put("derogation_flow", ev.controller, key, flow)
    if ev.data.get("recurring") or first is not None:
        why = "marked recurring" if ev.data.get("recurring") else (
            f"transfer no. {flow['count']} to this recipient on a derogation")
        b.add_finding(ev, "recurring_transfer_on_derogation", "medium",
                      f"transfer to {rid!r} in {cc} on {mech}, {why}: Art. 49 derogations"
                      " are for occasional transfers only",
                      [first, ev.event_id] if first else [ev.event_id])


HANDLERS = {"transfer.made": _made}
