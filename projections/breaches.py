"""Personal-data breaches (GDPR Arts. 33–34): the register, the 72-hour clock, obligations.

The entity holds the facts; the state (``open``, ``not_required``, ``notified_on_time``,
``notified_late_with_reasons``, ``notified_late_without_reasons``, ``overdue``) and the
deadline are derived when asked by ``projections.legal.breach`` — ``overdue`` depends on
"now", which comes from the injected clock at query time.

Awareness: ``breach.aware`` starts the clock; without it, a ``breach.processor_notified``
does (Art. 33(2): the controller is aware when its processor tells it). Detection alone
does not, but the gap between detection and awareness is reported. Only the first
``initial`` notification (else the first notification) decides whether the authority was
told in time; supplementary phases are listed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ledger.clock import format_rfc3339, parse_rfc3339
from projections.batch import Batch, Event
from projections.legal.breach import authority_due, breach_state, obligations


def _touch(b: Batch, ev: Event, change: Any) -> None:
    bid = ev.data["breach_id"]

    def apply(doc: dict[str, Any]) -> None:
        change(doc)
        doc.setdefault("events", []).append(ev.event_id)

    b.update("breach", ev.controller, bid, apply, lambda: {"breach_id": bid})


def _detected(b: Batch, ev: Event) -> None:
    d = ev.data
    _touch(b, ev, lambda doc: doc.setdefault("detected", {
        "detected_at": d["detected_at"], "description": d["description"],
        "source": d.get("source"), "nature": d.get("nature"),
        "recipient_id": d.get("recipient_id"), "event_id": ev.event_id,
    }))


def _aware(b: Batch, ev: Event) -> None:
    _touch(b, ev, lambda doc: doc.setdefault("aware", {
        "aware_at": ev.data["aware_at"], "reason": ev.data.get("reason"),
        "event_id": ev.event_id,
    }))


def _processor_notified(b: Batch, ev: Event) -> None:
    _touch(b, ev, lambda doc: doc.setdefault("processor_notified", {
        "recipient_id": ev.data["recipient_id"], "notified_at": ev.data["notified_at"],
        "event_id": ev.event_id,
    }))


def _assessed(b: Batch, ev: Event) -> None:
    d = ev.data
    keep = ("risk", "subjects_approx", "records_approx", "data_categories",
            "subject_categories", "nature", "consequences", "measures", "reasoning",
            "special_categories")
    _touch(b, ev, lambda doc: doc.update(
        assessment={**{k: d.get(k) for k in keep}, "event_id": ev.event_id}))


def _notified(b: Batch, ev: Event) -> None:
    d = ev.data
    note = {"authority": d["authority"], "notified_at": d["notified_at"], "phase": d["phase"],
            "reference": d.get("reference"), "delay_reasons": d.get("delay_reasons"),
            "event_id": ev.event_id}
    _touch(b, ev, lambda doc: doc.setdefault("notifications", []).append(note))


def _communicated(b: Batch, ev: Event) -> None:
    d = ev.data
    _touch(b, ev, lambda doc: doc.setdefault("communicated", {
        "communicated_at": d["communicated_at"], "subject_count": d.get("subject_count"),
        "channel": d.get("channel"), "event_id": ev.event_id,
    }))


def _exempted(b: Batch, ev: Event) -> None:
    d = ev.data
    _touch(b, ev, lambda doc: doc.update(exemption={
        "ground": d["ground"], "reason": d["reason"],
        "public_communication_ref": d.get("public_communication_ref"), "event_id": ev.event_id,
    }))


def _closed(b: Batch, ev: Event) -> None:
    _touch(b, ev, lambda doc: doc.setdefault("closed", {
        "at": ev.at, "summary": ev.data.get("summary"), "event_id": ev.event_id,
    }))


HANDLERS = {
    "breach.detected": _detected,
    "breach.aware": _aware,
    "breach.processor_notified": _processor_notified,
    "breach.assessed": _assessed,
    "breach.notified_authority": _notified,
    "breach.subjects_communicated": _communicated,
    "breach.communication_exempted": _exempted,
    "breach.closed": _closed,
}


def aware_at(doc: dict[str, Any]) -> datetime | None:
    if doc.get("aware"):
        return parse_rfc3339(doc["aware"]["aware_at"])
    if doc.get("processor_notified"):
        return parse_rfc3339(doc["processor_notified"]["notified_at"])
    return None


def initial_notification(doc: dict[str, Any]) -> dict[str, Any] | None:
    notes = doc.get("notifications") or []
    return next((n for n in notes if n["phase"] == "initial"), notes[0] if notes else None)


def _fmt(s: str | None) -> str | None:
    return format_rfc3339(parse_rfc3339(s)) if s else None


def view(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    """DESIGN.md's ``breach_id, status, aware_at, authority_due, risk, notified_at,
    obligations`` plus the register details (Art. 33(5))."""
    aware = aware_at(doc)
    risk = (doc.get("assessment") or {}).get("risk")
    note = initial_notification(doc)
    notified = parse_rfc3339(note["notified_at"]) if note else None
    exemption = (doc.get("exemption") or {}).get("ground")
    if aware is None:
        status, due = "open", None
    else:
        status = str(breach_state(aware, risk, notified, bool(note and note.get("delay_reasons")),
                                  now))
        due = authority_due(aware)
    detected = doc.get("detected")
    gap = None
    if detected and aware is not None:
        gap = int((aware - parse_rfc3339(detected["detected_at"])).total_seconds())
    return {
        "breach_id": doc["breach_id"],
        "status": status,
        "aware_at": format_rfc3339(aware) if aware else None,
        "authority_due": format_rfc3339(due) if due else None,
        "risk": risk,
        "notified_at": format_rfc3339(notified) if notified else None,
        "obligations": obligations(risk, exemption),
        "detected_at": _fmt(detected["detected_at"]) if detected else None,
        "awareness_gap_seconds": gap,
        "exemption": exemption,
        "subjects_communicated_at": _fmt((doc.get("communicated") or {}).get("communicated_at")),
        "closed_at": (doc.get("closed") or {}).get("at"),
        "notifications": list(doc.get("notifications") or []),
        "evidence": list(doc.get("events", [])),
    }


def unreadable_view(doc: dict[str, Any]) -> dict[str, Any]:
    """``view`` of a breach whose stored facts cannot be interpreted (``status``
    ``unprocessable``, no deadline): the register still lists it, ``findings`` says why."""
    return {
        "breach_id": doc.get("breach_id"), "status": "unprocessable", "aware_at": None,
        "authority_due": None, "risk": (doc.get("assessment") or {}).get("risk"),
        "notified_at": None,
        "obligations": {"record": True, "notify_authority": True,
                        "communicate_subjects": False},
        "detected_at": None, "awareness_gap_seconds": None, "exemption": None,
        "subjects_communicated_at": None, "closed_at": None,
        "notifications": list(doc.get("notifications") or []),
        "evidence": list(doc.get("events", [])),
    }


def findings(doc: dict[str, Any], controller_id: str, now: datetime) -> list[dict[str, Any]]:
    """``breach_notified_late_without_reasons``, ``breach_not_notified`` (72 h passed, not
    assessed unlikely, no notification), ``breach_subjects_not_communicated`` (closed, high
    risk, no Art. 34(3) exemption, no communication)."""
    v = view(doc, now)
    bid = doc["breach_id"]
    base = [e for e in ((doc.get("aware") or doc.get("processor_notified") or {}).get("event_id"),
                        (doc.get("assessment") or {}).get("event_id")) if e]
    out: list[dict[str, Any]] = []

    def add(code: str, severity: str, detail: str, evidence: list[str]) -> None:
        out.append({"code": code, "controller": controller_id, "severity": severity,
                    "detail": detail, "evidence": evidence, "breach_id": bid})

    if v["status"] == "notified_late_without_reasons":
        note = initial_notification(doc)
        assert note is not None
        add("breach_notified_late_without_reasons", "high",
            f"breach {bid!r}: authority notified at {v['notified_at']}, due"
            f" {v['authority_due']}, without reasons for the delay (Art. 33(1))",
            [*base, note["event_id"]])
    elif v["status"] == "overdue":
        add("breach_not_notified", "high",
            f"breach {bid!r}: aware at {v['aware_at']}, authority not notified by"
            f" {v['authority_due']}", base)
    if (v["obligations"]["communicate_subjects"] and doc.get("closed")
            and not doc.get("communicated")):
        add("breach_subjects_not_communicated", "high",
            f"breach {bid!r}: high risk, no Art. 34(3) exemption, closed without"
            " communicating to the data subjects", [*base, doc["closed"]["event_id"]])
    return out
