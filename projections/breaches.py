"""Personal-data breaches (GDPR Arts. 33–34): the register, the 72-hour clock, obligations.

The entity holds the facts; the state (``open``, ``not_required``, ``notified_on_time``,
``notified_late_with_reasons``, ``notified_late_without_reasons``, ``overdue``) and the
deadline are derived when asked by ``projections.legal.breach`` — ``overdue`` depends on
"now", which comes from the injected clock at query time.

Awareness: the clock starts at the earlier of ``breach.aware`` and
``breach.processor_notified`` (Art. 33(2): the controller is aware no later than when its
processor tells it). Detection alone does not start it, but the gap between detection and
awareness is reported, and a detection left without awareness for more than 72 hours is
the finding ``breach_awareness_not_recorded`` (and a row of the deadlines board while it
lasts). Only the first ``initial`` notification (else the first notification) decides
whether the authority was told in time; supplementary phases are listed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ledger.clock import format_rfc3339, parse_rfc3339
from projections.batch import Batch, Event
from projections.legal.breach import (
    AWARENESS_WINDOW,
    authority_due,
    awareness,
    awareness_delay,
    breach_state,
    obligations,
    public_communication_missing,
    public_communication_required,
    subjects_not_communicated,
)


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
        assessment={**{k: d.get(k) for k in keep}, "event_id": ev.event_id, "at": ev.at}))


def _notified(b: Batch, ev: Event) -> None:
    d = ev.data
    note = {"authority": d["authority"], "notified_at": d["notified_at"], "phase": d["phase"],
            "reference": d.get("reference"), "delay_reasons": d.get("delay_reasons"),
            "event_id": ev.event_id}
    _touch(b, ev, lambda doc: doc.setdefault("notifications", []).append(note))


def _communicated(b: Batch, ev: Event) -> None:
    """The first individual communication (Art. 34(1)) and, separately, the first public
    one (``public: true``, Art. 34(3)(c))."""
    d = ev.data
    key = "public_communication" if d.get("public") else "communicated"
    _touch(b, ev, lambda doc: doc.setdefault(key, {
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


def _own_aware(doc: dict[str, Any]) -> datetime | None:
    return parse_rfc3339(doc["aware"]["aware_at"]) if doc.get("aware") else None


def _processor_aware(doc: dict[str, Any]) -> datetime | None:
    p = doc.get("processor_notified")
    return parse_rfc3339(p["notified_at"]) if p else None


def aware_at(doc: dict[str, Any]) -> datetime | None:
    """The earlier of ``breach.aware`` and ``breach.processor_notified`` (Art. 33(2))."""
    return awareness(_own_aware(doc), _processor_aware(doc))


def awareness_event(doc: dict[str, Any]) -> str | None:
    """The event that made the controller aware (the earlier one; its own on a tie)."""
    own, proc = _own_aware(doc), _processor_aware(doc)
    if proc is not None and (own is None or proc < own):
        return doc["processor_notified"]["event_id"]
    return doc["aware"]["event_id"] if own is not None else None


def public_communication(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The public communication of Art. 34(3)(c): a ``breach.subjects_communicated`` with
    ``public: true``, or the exemption's ``public_communication_ref``."""
    if doc.get("public_communication"):
        return doc["public_communication"]
    ref = (doc.get("exemption") or {}).get("public_communication_ref")
    if ref:
        return {"reference": ref, "event_id": doc["exemption"]["event_id"]}
    return None


def unaware_gap(doc: dict[str, Any], now: datetime) -> timedelta | None:
    """How long the breach went from detection to awareness — or, while none is
    recorded, to its closing or to ``now``; ``None`` without a detection."""
    detected = doc.get("detected")
    if not detected:
        return None
    aware = aware_at(doc)
    closed = doc.get("closed")
    until = aware or (parse_rfc3339(closed["at"]) if closed else now)
    return until - parse_rfc3339(detected["detected_at"])


def initial_notification(doc: dict[str, Any]) -> dict[str, Any] | None:
    notes = doc.get("notifications") or []
    return next((n for n in notes if n["phase"] == "initial"), notes[0] if notes else None)


def _fmt(s: str | None) -> str | None:
    return format_rfc3339(parse_rfc3339(s)) if s else None


def _secs(gap: timedelta | None) -> int | None:
    return None if gap is None else int(gap.total_seconds())


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
    gap = unaware_gap(doc, now)
    public = public_communication(doc)
    return {
        "breach_id": doc["breach_id"],
        "status": status,
        "aware_at": format_rfc3339(aware) if aware else None,
        "authority_due": format_rfc3339(due) if due else None,
        "risk": risk,
        "notified_at": format_rfc3339(notified) if notified else None,
        "obligations": obligations(risk, exemption),
        "detected_at": _fmt(detected["detected_at"]) if detected else None,
        "awareness_gap_seconds": _secs(gap) if aware is not None else None,
        "unaware_for_seconds": _secs(gap) if aware is None else None,
        "awareness_due": (format_rfc3339(parse_rfc3339(detected["detected_at"])
                                         + AWARENESS_WINDOW) if detected and not aware
                          else None),
        "exemption": exemption,
        "public_communication_required": public_communication_required(risk, exemption),
        "public_communication": public,
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
        "detected_at": None, "awareness_gap_seconds": None, "unaware_for_seconds": None,
        "awareness_due": None, "exemption": None, "public_communication_required": None,
        "public_communication": None, "subjects_communicated_at": None, "closed_at": None,
        "notifications": list(doc.get("notifications") or []),
        "evidence": list(doc.get("events", [])),
    }


def findings(doc: dict[str, Any], controller_id: str, now: datetime) -> list[dict[str, Any]]:
    """``breach_notified_late_without_reasons``, ``breach_not_notified`` (72 h passed, not
    assessed unlikely, no notification), ``breach_awareness_not_recorded`` (detected, no
    awareness within 72 h), ``breach_subjects_not_communicated`` (closed, high risk, no
    Art. 34(3) exemption, no communication), ``breach_public_communication_missing``
    (closed under Art. 34(3)(c) without the public communication)."""
    v = view(doc, now)
    bid = doc["breach_id"]
    base = [e for e in (awareness_event(doc), (doc.get("assessment") or {}).get("event_id"))
            if e]
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
    detected = doc.get("detected")
    gap = unaware_gap(doc, now)
    if detected and gap is not None:
        aware = aware_at(doc)
        start = parse_rfc3339(detected["detected_at"])
        if awareness_delay(start, start + gap) is not None:
            hours = gap.total_seconds() / 3600
            what = (f"awareness recorded only at {v['aware_at']}" if aware is not None
                    else "no awareness recorded")
            add("breach_awareness_not_recorded", "medium",
                f"breach {bid!r}: detected at {v['detected_at']}, {what}: a gap of"
                f" {hours:.1f} h, longer than the 72 h a short investigation may take"
                " (Art. 33(1); EDPB Guidelines 9/2022)",
                [e for e in (detected["event_id"], awareness_event(doc)) if e])
    risk, exemption = v["risk"], v["exemption"]
    closed = bool(doc.get("closed"))
    if subjects_not_communicated(risk, exemption, bool(doc.get("communicated")), closed):
        add("breach_subjects_not_communicated", "high",
            f"breach {bid!r}: high risk, no Art. 34(3) exemption, closed without"
            " communicating to the data subjects (Art. 34(1))",
            [*base, doc["closed"]["event_id"]])
    if public_communication_missing(risk, exemption, v["public_communication"] is not None,
                                    bool(doc.get("communicated")), closed):
        add("breach_public_communication_missing", "high",
            f"breach {bid!r}: high risk, exempted from individual communication for"
            " disproportionate effort (Art. 34(3)(c)), closed without the public"
            " communication that must replace it",
            [*base, doc["exemption"]["event_id"], doc["closed"]["event_id"]])
    return out


def deadline_rows(v: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The breach's rows of the deadlines board (a ``view`` row): ``authority_due`` while
    the authority must still be notified; ``awareness_due`` (detection + 72 h) while a
    detected breach has no awareness recorded and is not closed."""
    if v["closed_at"]:
        return []
    rows = []
    if (v["authority_due"] is not None and v["notified_at"] is None
            and v["obligations"]["notify_authority"]):
        rows.append(("authority_due", v["authority_due"]))
    if v["awareness_due"] is not None:
        rows.append(("awareness_due", v["awareness_due"]))
    return [{"kind": "breach", "id": v["breach_id"], "deadline": name, "due": due,
             "due_at": due, "status": v["status"], "overdue": now > parse_rfc3339(due)}
            for name, due in rows]
