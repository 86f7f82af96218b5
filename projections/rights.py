"""Data-subject rights requests (GDPR Arts. 12, 15–22).

The entity holds only facts from the events (receipt, identity checks, extension, answer).
Every deadline is derived when asked, by the pure functions of ``projections.legal.rights``
with the controller's settings of the moment (country, time zone, promise, identity
policy): never stored once and forgotten, so a corrected controller registration or a fix
to the rules applies to every request at once.

Status: ``open`` | ``awaiting_identity`` (policy ``restart_on_identity``, identity asked and
not yet verified: the clock has not started) | ``extended`` (a valid extension) |
``overdue`` (not answered and today, in the controller's zone, is past the legal date in
force) | ``fulfilled`` | ``refused`` | ``withdrawn``. ``overdue`` depends on "now", so it is
computed at query time from the injected clock, never materialised.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from projections.batch import Batch, Event, utc
from projections.controllers import Settings, settings
from projections.legal.rights import (
    IdentityPolicy,
    RefusalVerdict,
    RightsDeadlines,
    clock_start,
    extension_valid,
    identity_request_delay,
    judge_refusal,
    period_end,
    receipt_date,
    rights_deadlines,
)

CLOSED = ("fulfilled", "refused", "withdrawn")


def _touch(b: Batch, ev: Event, change: Any) -> None:
    rid = ev.data["request_id"]

    def apply(doc: dict[str, Any]) -> None:
        change(doc)
        doc.setdefault("events", []).append(ev.event_id)

    b.update("rights_request", ev.controller, rid, apply,
             lambda: {"request_id": rid, "received_event_id": None, "state": "unknown"})


def _received(b: Batch, ev: Event) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc.update(
            subject=ev.subject,
            right=ev.data["right"],
            received_at=ev.data["received_at"],
            channel=ev.data.get("channel"),
            activity_id=ev.data.get("activity_id"),
            received_event_id=ev.event_id,
        )
        if doc.get("state") == "unknown":
            doc["state"] = "open"

    _touch(b, ev, change)


def _identity_requested(b: Batch, ev: Event) -> None:
    def change(doc: dict[str, Any]) -> None:
        if "identity_requested_at" not in doc:
            doc["identity_requested_at"] = ev.data.get("at") or ev.occurred_at
            doc["identity_requested_event_id"] = ev.event_id

    _touch(b, ev, change)


def _identity_verified(b: Batch, ev: Event) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["identity_verified_at"] = ev.data.get("at") or ev.occurred_at

    _touch(b, ev, change)


def _extended(b: Batch, ev: Event) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc.setdefault("extension", {
            "reason": ev.data["reason"],
            "subject_informed_at": ev.data["subject_informed_at"],
            "event_id": ev.event_id,
        })

    _touch(b, ev, change)


def _closing(state: str) -> Any:
    def handler(b: Batch, ev: Event) -> None:
        def change(doc: dict[str, Any]) -> None:
            if doc.get("closed"):
                doc.setdefault("later_answers", []).append(ev.event_id)
                return
            doc["closed"] = {
                "state": state,
                "at": ev.data.get("at") or ev.occurred_at,
                "event_id": ev.event_id,
                "partial": ev.data.get("partial"),
                "reason": ev.data.get("reason"),
                "legal_ground": ev.data.get("legal_ground"),
                "complaint_right_informed": ev.data.get("complaint_right_informed"),
            }

        _touch(b, ev, change)

    return handler


HANDLERS = {
    "rights_request.received": _received,
    "rights_request.identity_requested": _identity_requested,
    "rights_request.identity_verified": _identity_verified,
    "rights_request.extended": _extended,
    "rights_request.fulfilled": _closing("fulfilled"),
    "rights_request.refused": _closing("refused"),
    "rights_request.withdrawn": _closing("withdrawn"),
}


@dataclass(frozen=True, slots=True)
class Derived:
    """A request's deadlines and status under the controller's settings at ``now``."""

    settings: Settings
    deadlines: RightsDeadlines | None  # None while the clock has not started
    extension_valid: bool | None  # None without an extension
    status: str
    closed_on: date | None  # local date of the answer
    today: date

    @property
    def legal_due(self) -> date | None:
        d = self.deadlines
        return None if d is None else (d.extended_due if d.extended else d.due)


def derive(doc: dict[str, Any], controller: dict[str, Any] | None, now: datetime) -> Derived:
    s = settings(controller)
    tz, cc = s.timezone, s.holiday_country
    today = receipt_date(now, tz)
    closed = doc.get("closed")
    closed_on = receipt_date(closed["at"], tz) if closed else None
    if not doc.get("received_at"):
        return Derived(s, None, None, closed["state"] if closed else "unknown", closed_on, today)
    received = receipt_date(doc["received_at"], tz)
    req = doc.get("identity_requested_at")
    ver = doc.get("identity_verified_at")
    start = clock_start(
        received, s.identity_policy,
        receipt_date(req, tz) if req else None,
        receipt_date(ver, tz) if ver else None,
        due=period_end(received, 1, cc),
    )
    ext = doc.get("extension")
    valid = None
    if ext is not None and start is not None:
        valid = extension_valid(start, ext["subject_informed_at"], cc, tz)
    deadlines = None if start is None else rights_deadlines(start, cc, s.promise_days, bool(valid))
    if closed:
        status = closed["state"]
    elif deadlines is None:
        status = "awaiting_identity"
    elif today > (deadlines.extended_due if deadlines.extended else deadlines.due):
        status = "overdue"
    elif deadlines.extended:
        status = "extended"
    else:
        status = "open"
    return Derived(s, deadlines, valid, status, closed_on, today)


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def view(doc: dict[str, Any], controller: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The read model of DESIGN.md (``request_id, subject, right, status, received_at, due,
    extended_due, promised_due, binding_due``) plus what an auditor needs to check it."""
    d = derive(doc, controller, now)
    dl = d.deadlines
    closed = doc.get("closed")
    return {
        "request_id": doc["request_id"],
        "subject": doc.get("subject"),
        "right": doc.get("right"),
        "status": d.status,
        "received_at": utc(doc["received_at"]) if doc.get("received_at") else None,
        "due": _iso(dl.due) if dl else None,
        "extended_due": _iso(dl.extended_due) if dl else None,
        "promised_due": _iso(dl.promised_due) if dl else None,
        "binding_due": _iso(dl.binding_due) if dl else None,
        "extended": bool(dl and dl.extended),
        "extension_valid": d.extension_valid,
        "closed_at": utc(closed["at"]) if closed else None,
        "identity_policy": d.settings.identity_policy,
        "evidence": list(doc.get("events", [])),
    }


def unreadable_view(doc: dict[str, Any], controller: dict[str, Any] | None) -> dict[str, Any]:
    """``view`` of a request whose stored facts cannot be interpreted (``status``
    ``unprocessable``, no deadlines): the register still lists it, ``findings`` says why."""
    return {
        "request_id": doc.get("request_id"), "subject": doc.get("subject"),
        "right": doc.get("right"), "status": "unprocessable", "received_at": None,
        "due": None, "extended_due": None, "promised_due": None, "binding_due": None,
        "extended": False, "extension_valid": None, "closed_at": None,
        "identity_policy": settings(controller).identity_policy,
        "evidence": list(doc.get("events", [])),
    }


def findings(
    doc: dict[str, Any], controller_id: str, controller: dict[str, Any] | None, now: datetime
) -> list[dict[str, Any]]:
    """``dsr_overdue``, ``dsr_promise_missed``, ``dsr_extension_not_notified_in_time``,
    ``dsr_refused_without_complaint_info``, ``dsr_refused_after_extension``,
    ``dsr_identity_request_late``, ``rights_event_for_unknown_request``.

    A request is judged on the day it was closed (answered, refused or withdrawn), else
    today: so a withdrawal keeps every finding complete before it (a deadline missed
    before the withdrawal stays missed) and adds none after it."""
    out: list[dict[str, Any]] = []
    rid = doc["request_id"]
    events = list(doc.get("events", []))

    def add(code: str, severity: str, detail: str, evidence: list[str | None]) -> None:
        out.append({"code": code, "controller": controller_id, "severity": severity,
                    "detail": detail, "evidence": [e for e in evidence if e],
                    "request_id": rid})

    if doc.get("received_event_id") is None:
        add("rights_event_for_unknown_request", "low",
            f"events for request {rid!r}, whose receipt is not in the ledger", events)
        return out
    d = derive(doc, controller, now)
    closed = doc.get("closed")
    state = closed["state"] if closed else None
    answered = closed["event_id"] if closed else None
    received_ev = doc["received_event_id"]
    ext = doc.get("extension")
    if ext is not None and d.extension_valid is False:
        add("dsr_extension_not_notified_in_time", "medium",
            f"request {rid!r}: subject told of the extension on {ext['subject_informed_at']},"
            " after the first month: the original due date stands",
            [received_ev, ext["event_id"]])
    tz = d.settings.timezone
    req = doc.get("identity_requested_at")
    if req and d.settings.identity_policy == IdentityPolicy.RESTART_ON_IDENTITY:
        received = receipt_date(doc["received_at"], tz)
        asked = receipt_date(req, tz)
        within = d.settings.identity_request_within_days
        late = identity_request_delay(received, asked, within)
        if late is not None and (d.closed_on is None or asked <= d.closed_on):
            add("dsr_identity_request_late", "medium",
                f"request {rid!r}: identity asked for on {asked.isoformat()}, {late} days"
                f" after receipt — more than the {within} days the controller can justify"
                " under restart_on_identity (Art. 12(2), 12(6))",
                [received_ev, doc.get("identity_requested_event_id")])
    dl = d.deadlines
    if dl is None:
        return out
    on = d.closed_on or d.today
    legal = d.legal_due
    assert legal is not None
    if state == "withdrawn":
        what = f"withdrawn on {on.isoformat()} without an answer"
    elif closed:
        what = f"{'refused' if state == 'refused' else 'answered'} on {on.isoformat()}"
    else:
        what = "not answered"
    if state == "refused":
        verdict = judge_refusal(on, dl)
        if verdict is RefusalVerdict.LATE:
            add("dsr_overdue", "high",
                f"request {rid!r} ({doc.get('right')}): {what}, due {legal.isoformat()};"
                " a refusal must reach the subject within one month of receipt"
                f" ({dl.due.isoformat()}, Art. 12(4))", [received_ev, ext and ext["event_id"],
                                                         answered])
        elif verdict is RefusalVerdict.AFTER_EXTENSION:
            add("dsr_refused_after_extension", "low",
                f"request {rid!r}: {what}, after one month of receipt ({dl.due.isoformat()})"
                f" but within the valid extension to {dl.extended_due.isoformat()}: Art."
                " 12(4) asks for a refusal within one month and names no extension, so this"
                " reading is contested — review", [received_ev, ext and ext["event_id"],
                                                    answered])
    elif on > legal:
        add("dsr_overdue", "high",
            f"request {rid!r} ({doc.get('right')}): {what}, due {legal.isoformat()}",
            [received_ev, ext and ext["event_id"], answered])
    if dl.promised_due is not None and on > dl.promised_due:
        add("dsr_promise_missed", "medium",
            f"request {rid!r}: {what}, promised by {dl.promised_due.isoformat()}"
            f" ({d.settings.promise_days} days)", [received_ev, answered])
    if state == "refused" and not closed.get("complaint_right_informed"):
        add("dsr_refused_without_complaint_info", "medium",
            f"request {rid!r} refused without telling the subject of the right to complain"
            " (Art. 12(4))", [received_ev, answered])
    return out
