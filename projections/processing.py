"""Processing operations and disclosures (append-only records), with the consent check.

``processing.performed`` on the consent basis (``A6-1-a``) for a named subject needs a
consent given before ``occurred_at`` and not withdrawn at that instant, for the purpose of
the operation (its ``purpose``, else the purposes its activity declares, or a consent given
for that activity). Otherwise: ``processing_after_withdrawal`` when the consent had been
withdrawn, else ``processing_without_consent``.

The check uses the evidence in the ledger when the processing event is applied (log
order). A consent that arrives later in the log, even with an earlier ``occurred_at``, does
not retract the finding: it was not on record when the operation was recorded, and the
late evidence is itself visible in the consent history. This keeps findings a pure function
of the log prefix, which is what makes replays deterministic.
"""

from __future__ import annotations

from typing import Any

from projections import consents, erasure
from projections.batch import Batch, Event, present
from projections.ropa import as_list

CONSENT_BASIS = "A6-1-a"
_PROCESSING_OPTIONAL = ("purpose", "operation", "subject_count", "special_category_condition")
_DISCLOSURE_OPTIONAL = ("activity_id", "subject_count", "basis", "purpose", "reference")


def _performed(b: Batch, ev: Event) -> None:
    d = ev.data
    aid = d["activity_id"]
    b.add_record(ev, "processing", aid, present(
        {"activity_id": aid, "basis": d["basis"], "data_categories": d["data_categories"]},
        d, _PROCESSING_OPTIONAL))
    activity = b.get("activity", ev.controller, aid)
    status = None if activity is None else activity.get("status")
    if activity is None or status == "undeclared":
        b.add_finding(ev, "processing_undeclared_activity", "medium",
                      f"processing for activity {aid!r}, which is not in the record of"
                      " processing (Art. 30)", [ev.event_id])
    else:
        if status == "retired":
            b.add_finding(ev, "processing_on_retired_activity", "medium",
                          f"processing for activity {aid!r} after it was retired",
                          [activity["events"][-1], ev.event_id])
        declared = as_list(activity.get("lawful_basis"))
        if declared and d["basis"] not in declared:
            b.add_finding(ev, "processing_basis_not_declared", "medium",
                          f"basis {d['basis']} is not among those declared for {aid!r}:"
                          f" {', '.join(declared)}", [activity["events"][0], ev.event_id])
    if ev.subject is not None:
        erasure.check_processing(b, ev)
        if d["basis"] == CONSENT_BASIS:
            _check_consent(b, ev, activity)


def _check_consent(b: Batch, ev: Event, activity: dict[str, Any] | None) -> None:
    aid = ev.data["activity_id"]
    asked = ev.data.get("purpose")
    # Only read below: the activity's own list needs no copy.
    purposes = [asked] if asked else (activity or {}).get("purposes") or [f"activity:{aid}"]
    assert ev.subject is not None
    rows = b.consent_history(ev.controller, ev.subject)
    states = []
    for purpose in purposes:
        row = consents.latest(rows, purpose, ev.at, activity_id=aid)
        state = consents.state_of(row, ev.at)
        if state == consents.GIVEN:
            return
        states.append((purpose, state, row))
    withdrawn = [(p, r) for p, s, r in states if s == consents.WITHDRAWN and r is not None]
    if withdrawn:
        purpose, row = withdrawn[0]
        b.add_finding(ev, "processing_after_withdrawal", "high",
                      f"processing on consent for purpose {purpose!r} after the subject"
                      f" withdrew it at {row[1]}", [row[3], ev.event_id])
        return
    expired = [(p, r) for p, s, r in states if s == consents.EXPIRED and r is not None]
    detail = f"processing on consent with no consent in force for {', '.join(purposes)}"
    evidence = [ev.event_id]
    if expired:
        detail += f" (consent expired at {expired[0][1][5].get('expires_at')})"
        evidence = [expired[0][1][3], ev.event_id]
    b.add_finding(ev, "processing_without_consent", "high", detail, evidence)


def _disclosed(b: Batch, ev: Event) -> None:
    d = ev.data
    rid = d["recipient_id"]
    b.add_record(ev, "disclosure", rid, present(
        {"recipient_id": rid, "data_categories": d["data_categories"]},
        d, _DISCLOSURE_OPTIONAL))
    rec = b.get("recipient", ev.controller, rid)
    if rec is None or rec.get("status") != "active":
        state = "removed" if rec and rec.get("status") == "removed" else "not registered"
        b.add_finding(ev, "disclosure_to_unregistered_recipient", "medium",
                      f"disclosure to recipient {rid!r}, {state}", [ev.event_id])


HANDLERS = {"processing.performed": _performed, "disclosure.made": _disclosed}
