"""The read API: what the HTTP layer (``api/``), the CLI and the reports call.

Every function takes a ``ReadModelStore``, a controller id and filters, and returns plain
JSON-ready dicts whose field names are DESIGN.md's ("Read-model field names"): rights
requests ``request_id, subject, right, status, received_at, due, extended_due,
promised_due, binding_due``; breaches ``breach_id, status, aware_at, authority_due, risk,
notified_at, obligations``; findings ``code, controller, severity, detail, evidence``. Extra
fields are documented in docs/projections.md. Times are RFC 3339 UTC, dates YYYY-MM-DD.

"Now" comes from the ``clock`` argument (``ledger.clock.Clock``; default the system clock):
deadlines, ``overdue`` states and the findings that depend on time (``dsr_overdue``,
``dsr_promise_missed`` while unanswered, ``breach_not_notified``) are computed here, at
query time, from the stored facts — never materialised, so a rebuild is byte-identical
whenever it runs, and a request turns overdue at the right moment without a tick.

A controller the store has never seen raises ``UnknownControllerError`` (the API answers
404, exactly as for a controller the caller may not see).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ledger.clock import Clock, SystemClock, format_rfc3339, parse_rfc3339
from projections import accountability
from projections import breaches as breach_model
from projections import consents as consent_model
from projections import erasure as erasure_model
from projections import recipients as recipient_model
from projections import rights as rights_model
from projections import ropa as ropa_model
from projections.alerts.thresholds import deadline_alerts
from projections.batch import utc
from projections.controllers import FIELDS as CONTROLLER_FIELDS
from projections.controllers import settings
from projections.legal.rights import zone
from projections.store import ReadModelStore
from projections.unprocessable import UNREADABLE, case_finding

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}


class UnknownControllerError(LookupError):
    """No event of this controller has been projected."""


def _now(clock: Clock | None) -> datetime:
    return (clock or SystemClock()).now()


def _controller_doc(store: ReadModelStore, controller: str) -> dict[str, Any] | None:
    doc = store.entity("controller", controller, controller)
    if doc is None and store.entity("stats", controller, "events") is None:
        raise UnknownControllerError(controller)
    return doc


def _controller_view(cid: str, doc: dict[str, Any] | None, stats: dict[str, Any] | None
                     ) -> dict[str, Any]:
    doc = doc or {}
    out: dict[str, Any] = {"controller": cid}
    out.update({f: doc.get(f) for f in CONTROLLER_FIELDS})
    out["identity_policy"] = settings(doc).identity_policy
    out["registered"] = bool(doc)
    out["registered_at"] = doc.get("registered_at")
    out["events"] = (stats or {}).get("total", 0)
    out["event_counts"] = dict(sorted((stats or {}).get("by_type", {}).items()))
    out["evidence"] = list(doc.get("events", []))
    return out


def controllers(
    store: ReadModelStore, visible: Iterable[str] | None = None
) -> list[dict[str, Any]]:
    """Every controller projected (restricted to ``visible`` when given), by id."""
    docs = {d["controller"]: d for d in store.entities("controller")}
    stats = {cid: store.entity("stats", cid, "events") for cid in docs}
    allowed = None if visible is None else set(visible)
    return [_controller_view(cid, docs[cid], stats[cid]) for cid in sorted(docs)
            if allowed is None or cid in allowed]


def controller(store: ReadModelStore, controller: str) -> dict[str, Any]:
    doc = _controller_doc(store, controller)
    return _controller_view(controller, doc, store.entity("stats", controller, "events"))


controller_info = controller  # for callers whose parameter is named ``controller``


def producers(store: ReadModelStore, controller: str) -> list[dict[str, Any]]:
    _controller_doc(store, controller)
    return store.entities("producer", controller)


def consents(
    store: ReadModelStore,
    controller: str,
    subject: str,
    as_of: datetime | str | None = None,
    clock: Clock | None = None,
) -> dict[str, Any]:
    """The consent state of ``subject`` (its pseudonym) for every purpose, at ``as_of``
    (default now): ``{"controller", "subject", "as_of", "purposes": [{"purpose", "state",
    "given_at", "withdrawn_at", "expires_at", "method", "notice_version", "evidence_ref",
    "withdrawal_method", "evidence"}], "erased"}``; ``state`` is given | withdrawn |
    expired | none; ``erased`` is ``{"at", "request_id", "event_id"}`` when the subject's
    keys had been destroyed by ``as_of`` (``subject.erased``), else null."""
    _controller_doc(store, controller)
    if as_of is None:
        at = format_rfc3339(_now(clock))
    elif isinstance(as_of, datetime):
        at = format_rfc3339(as_of)
    else:
        at = utc(as_of)
    rows = store.consent_rows(controller, subject)
    erased = erasure_model.view([d for d in store.records(controller, "erasure", subject=subject)
                                 if d["keys_destroyed_at"] <= at])
    return {"controller": controller, "subject": subject, "as_of": at,
            "purposes": consent_model.view(rows, at), "erased": erased}


def recipients(store: ReadModelStore, controller: str, status: str | None = None
               ) -> list[dict[str, Any]]:
    """The recipients register (``status``: active | removed | unregistered)."""
    _controller_doc(store, controller)
    out = [recipient_model.view(d) for d in store.entities("recipient", controller)]
    return [r for r in out if status is None or r["status"] == status]


def ropa(store: ReadModelStore, controller: str, clock: Clock | None = None,
         include_retired: bool = True) -> dict[str, Any]:
    """The Art. 30(1) record: the controller's entry and every activity with
    ``complete`` / ``missing``; ``complete`` at the top is true when every active entry is."""
    ctl = _controller_doc(store, controller)
    today = _now(clock).date()
    recs = {r["recipient_id"]: r for r in store.entities("recipient", controller)}
    acts = [ropa_model.view(a, ctl, recs, today) for a in store.entities("activity", controller)]
    if not include_retired:
        acts = [a for a in acts if a["status"] != "retired"]
    c = ctl or {}
    return {
        "controller": {"controller": controller, "name": c.get("name"),
                       "contact": c.get("contact"), "dpo_contact_role": c.get("dpo_contact_role"),
                       "country": c.get("country")},
        "activities": acts,
        "complete": all(a["complete"] for a in acts if a["status"] != "retired"),
    }


def _records(store: ReadModelStore, controller: str, kind: str, **kw: Any) -> list[dict[str, Any]]:
    _controller_doc(store, controller)
    return store.records(controller, kind, **kw)


def processing(store: ReadModelStore, controller: str, subject: str | None = None,
               activity_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Processing operations in log order (filter by subject pseudonym or activity)."""
    return _records(store, controller, "processing", subject=subject, key=activity_id,
                    limit=limit)


def disclosures(store: ReadModelStore, controller: str, recipient_id: str | None = None,
                limit: int | None = None) -> list[dict[str, Any]]:
    return _records(store, controller, "disclosure", key=recipient_id, limit=limit)


def transfers(store: ReadModelStore, controller: str, valid: bool | None = None,
              recipient_id: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Transfers with the verdict of the law on their day: ``valid``, ``reason``,
    ``judged_on``, ``occasional_only``."""
    out = _records(store, controller, "transfer", key=recipient_id)
    if valid is not None:
        out = [t for t in out if t["valid"] is valid]
    return out[:limit] if limit is not None else out


def _rights_view(d: dict[str, Any], ctl: dict[str, Any] | None, now: datetime
                 ) -> dict[str, Any]:
    """One request's view; one whose stored facts cannot be interpreted is listed as
    ``unprocessable`` (and named by ``findings``), never failing the whole answer."""
    try:
        return rights_model.view(d, ctl, now)
    except UNREADABLE:
        return rights_model.unreadable_view(d, ctl)


def _breach_view(d: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One breach's view, ``unprocessable`` when its stored facts cannot be interpreted."""
    try:
        return breach_model.view(d, now)
    except UNREADABLE:
        return breach_model.unreadable_view(d)


def rights_requests(store: ReadModelStore, controller: str, status: str | None = None,
                    subject: str | None = None, clock: Clock | None = None
                    ) -> list[dict[str, Any]]:
    """Rights requests with their deadlines derived now; ordered by ``received_at``."""
    ctl = _controller_doc(store, controller)
    now = _now(clock)
    out = [_rights_view(d, ctl, now) for d in store.entities("rights_request", controller)]
    out = [r for r in out if (status is None or r["status"] == status)
           and (subject is None or r["subject"] == subject)]
    out.sort(key=lambda r: (r["received_at"] is None, r["received_at"] and utc(r["received_at"]),
                            r["request_id"]))
    return out


def breaches(store: ReadModelStore, controller: str, status: str | None = None,
             clock: Clock | None = None) -> list[dict[str, Any]]:
    """The breach register (Art. 33(5)): every breach, with state and obligations."""
    _controller_doc(store, controller)
    now = _now(clock)
    out = [_breach_view(d, now) for d in store.entities("breach", controller)]
    out = [b for b in out if status is None or b["status"] == status]
    out.sort(key=lambda b: (b["aware_at"] is None, b["aware_at"] or "", b["breach_id"]))
    return out


def findings(store: ReadModelStore, controller: str, code: str | None = None,
             severity: str | None = None, clock: Clock | None = None,
             stored: bool = True) -> list[dict[str, Any]]:
    """Every finding: those decided when their event was applied (consents, processing,
    disclosures, transfers) and those judged now (rights requests, breaches, the record of
    processing). Ordered by severity, code, then evidence. ``stored=False``: only those
    judged now (the alert scheduler reads the stored ones incrementally)."""
    ctl = _controller_doc(store, controller)
    now = _now(clock)
    out = [{k: f[k] for k in ("code", "controller", "severity", "detail", "evidence")}
           for f in (store.findings(controller) if stored else ())]
    for d in store.entities("rights_request", controller):
        try:
            out.extend(rights_model.findings(d, controller, ctl, now))
        except UNREADABLE as exc:
            out.append(case_finding(controller, f"rights request {d.get('request_id')!r}", exc,
                                    list(d.get("events", [])),
                                    request_id=str(d.get("request_id"))))
    for d in store.entities("breach", controller):
        try:
            out.extend(breach_model.findings(d, controller, now))
        except UNREADABLE as exc:
            out.append(case_finding(controller, f"breach {d.get('breach_id')!r}", exc,
                                    list(d.get("events", [])),
                                    breach_id=str(d.get("breach_id"))))
    for a in ropa(store, controller, clock)["activities"]:
        if not a["complete"] and a["status"] != "retired":
            out.append({"code": "ropa_incomplete", "controller": controller, "severity": "medium",
                        "detail": f"activity {a['activity_id']!r} lacks: {', '.join(a['missing'])}",
                        "evidence": a["evidence"], "activity_id": a["activity_id"]})
    out = [f for f in out if (code is None or f["code"] == code)
           and (severity is None or f["severity"] == severity)]
    out.sort(key=lambda f: (SEVERITY_ORDER.get(f["severity"], 9), f["code"], f["evidence"]))
    return out


def _end_of_day(d: date, tz: str) -> datetime:
    """A date deadline ends at the end of that day in the controller's zone (1182/71)."""
    return datetime.combine(d + timedelta(days=1), time(0), zone(tz)).astimezone(UTC)


def deadlines(store: ReadModelStore, controller: str, clock: Clock | None = None
              ) -> list[dict[str, Any]]:
    """Everything still due, soonest first: ``{"kind", "id", "deadline", "due", "due_at",
    "status", "overdue", "alerts"}`` (``alerts``: ``[{"threshold", "at"}]``, when the alert
    scheduler tells a responder). ``due`` is a date (rights requests) or an instant
    (breaches); ``due_at`` is the instant it ends, in UTC, which orders them."""
    ctl = _controller_doc(store, controller)
    now = _now(clock)
    tz = settings(ctl).timezone
    items: list[dict[str, Any]] = []
    for r in rights_requests(store, controller, clock=clock):
        if r["status"] in rights_model.CLOSED or r["binding_due"] is None:
            continue
        legal = r["extended_due"] if r["extended"] else r["due"]
        names = [("binding_due", r["binding_due"])]
        if legal != r["binding_due"]:
            names.append(("extended_due" if r["extended"] else "due", legal))
        for name, value in names:
            try:
                end = _end_of_day(date.fromisoformat(value), tz)
            except UNREADABLE:  # a date at the calendar's end, an unknown zone: the
                continue  # findings name the case (rights_requests lists it)
            items.append({"kind": "rights_request", "id": r["request_id"], "deadline": name,
                          "due": value, "due_at": format_rfc3339(end), "status": r["status"],
                          "overdue": now >= end, "subject": r["subject"], "right": r["right"]})
    for b in breaches(store, controller, clock=clock):
        items.extend(breach_model.deadline_rows(b, now))
    for i in items:  # when the alert scheduler will tell a responder (docs/alerts.md)
        # awareness_due has no threshold alerts: its finding is alerted when raised
        try:
            i["alerts"] = [] if i["deadline"] == "awareness_due" else deadline_alerts(
                i["kind"], i["deadline"], parse_rfc3339(i["due_at"]))
        except UNREADABLE:
            i["alerts"] = []
    items.sort(key=lambda i: (i["due_at"], i["kind"], i["id"], i["deadline"]))
    return items


def consent_overview(store: ReadModelStore, controller: str,
                     as_of: datetime | str | None = None, clock: Clock | None = None
                     ) -> dict[str, Any]:
    """Consent per purpose over every subject, at ``as_of`` (default now): ``{"controller",
    "as_of", "subjects", "purposes": [{"purpose", "in_force", "withdrawn", "expired",
    "subjects", "given_events", "withdrawn_events"}]}`` (``in_force`` etc. count subjects
    whose latest consent row for the purpose is in that state at ``as_of``, as
    ``consents(subject)`` would say; ``*_events`` count rows up to ``as_of``, one per purpose
    of an event)."""
    _controller_doc(store, controller)
    at = _as_of(as_of, clock)
    rows = store.controller_consent_rows(controller)
    return {"controller": controller, "as_of": at,
            "subjects": len({r[0] for r in rows if r[2] <= at}),
            "purposes": accountability.overview(rows, at)}


def _as_of(as_of: datetime | str | None, clock: Clock | None) -> str:
    if as_of is None:
        return format_rfc3339(_now(clock))
    if isinstance(as_of, datetime):
        return format_rfc3339(as_of)
    return utc(as_of)


def report(store: ReadModelStore, controller: str, clock: Clock | None = None,
           start: datetime | None = None, end: datetime | None = None,
           checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    """The accountability report (Art. 5(2)) of one controller (docs/report.md).

    The registers (record of processing, recipients, findings, deadlines) are those in
    force at the clock's now; the period ``start <= t < end`` (either open) selects what is
    counted: consent events by their time, rights requests by receipt, breaches by
    awareness (else detection), transfers by their time. ``checkpoint`` is the signed tree
    head the read models had applied (``ledger.log.latest_checkpoint``), which anchors the
    report; the API and the CLI pass it.

    Keys kept stable for the evidence bundle and callers: ``controller, generated_at,
    identity_policy, ropa, recipients, rights_requests, breaches, transfers {total,
    invalid}, deadlines, findings``."""
    now = _now(clock)
    ctl = controller_info(store, controller)
    tz = settings(_controller_doc(store, controller)).timezone
    as_of = format_rfc3339(now)
    ts = [t for t in transfers(store, controller)
          if accountability.in_period(t.get("occurred_at"), start, end)]
    rs = [r for r in rights_requests(store, controller, clock=clock)
          if accountability.in_period(r.get("received_at"), start, end)]
    docs = {d["breach_id"]: d for d in store.entities("breach", controller)}
    bs = [b for b in breaches(store, controller, clock=clock)
          if accountability.in_period(b.get("aware_at") or b.get("detected_at"), start, end)]
    rec = recipients(store, controller)
    record = ropa(store, controller, clock)
    return {
        "controller": ctl,
        "generated_at": as_of,
        "period": {"from": format_rfc3339(start) if start else None,
                   "to": format_rfc3339(end) if end else None},
        "timezone": tz,
        "identity_policy": ctl["identity_policy"],
        "identity": accountability.identity(ctl["identity_policy"]),
        "ropa": record,
        "lawful_bases": accountability.lawful_bases(record["activities"]),
        "recipients": accountability.recipients_with_transfers(rec, ts),
        "consent": accountability.consent_stats(store.controller_consent_rows(controller),
                                                as_of, start, end, tz),
        "rights_requests": rs,
        "timeliness": accountability.timeliness(rs, tz),
        "breaches": bs,
        "breach_timelines": [accountability.breach_timeline(
            b, ((docs.get(b["breach_id"]) or {}).get("assessment") or {}).get("at"), now)
            for b in bs],
        "transfers": {"total": len(ts), "invalid": [t for t in ts if not t["valid"]],
                      "by_mechanism": accountability.transfers_by_mechanism(ts)},
        "deadlines": deadlines(store, controller, clock),
        "findings": findings(store, controller, clock=clock),
        "anchor": accountability.anchor(controller, checkpoint, ctl["events"]),
    }
