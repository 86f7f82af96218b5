"""Pure functions from the read models' case facts to the alerts they call for.

Nothing here reads a store or a clock: ``plan_*`` take the views of
``projections.queries`` (a breach, a rights request, a finding) and return ``Planned``
alerts, each with a deterministic id and the instant it is due. The scheduler turns plans
into outbox rows; tests check the arithmetic here with plain dicts.

Thresholds (DESIGN.md "Alerts"):

- breach (clock running from ``aware_at``): aware + 48 h, + 60 h, + 71 h, and ``overdue``
  at + 72 h (= ``authority_due``). Elapsed hours in UTC, like the deadline itself.
  Resolved — the authority notified, or the breach assessed ``unlikely`` — means no
  alerts at all (the scheduler cancels those still pending).
- rights request: ``binding_due`` is a date in the controller's time zone; the period
  ends at the **end of that local day** (Reg. 1182/71), i.e. 00:00 local of the next day.
  ``due-7d`` = that instant − 7 × 24 h, ``due-1d`` = that instant − 24 h, ``overdue`` =
  that instant. When the legal date in force is later than the binding (promised) date,
  ``legal_overdue`` fires at the end of the legal date too: missing the promise and
  missing the law are different findings. Fulfilled, refused or withdrawn = no alerts;
  a request still awaiting identity (clock not started) has none yet.
- finding: ``raised``, due the moment it is first seen. Findings that merely restate an
  overdue threshold alert of a case still open (``breach_not_notified``; ``dsr_overdue``
  and ``dsr_promise_missed`` before the answer) are not alerted twice.

Alert ids: UUIDv5 (SHA-1 based, RFC 9562) under a fixed namespace of
``controller \\n kind:case \\n threshold@anchor``. The anchor is the instant or date the
threshold hangs on (``authority_due``, the due date, or a SHA-256 of a finding's
evidence), so the same case and threshold always give the same id — on every restart, in
every process — while a deadline that moves (a valid extension) is a new alert.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ledger.clock import format_rfc3339, parse_rfc3339
from projections.legal.rights import zone

#: Fixed namespace of alert ids. Changing it would re-send every alert: never do.
NAMESPACE = uuid.UUID("6f1d3b0e-6a39-5c1e-9d0f-a1e7a1e7a1e7")

BREACH_THRESHOLDS: tuple[tuple[str, timedelta], ...] = (
    ("48h", timedelta(hours=48)),
    ("60h", timedelta(hours=60)),
    ("71h", timedelta(hours=71)),
    ("overdue", timedelta(hours=72)),
)
RIGHTS_THRESHOLDS: tuple[tuple[str, timedelta], ...] = (
    ("due-7d", timedelta(days=7)),
    ("due-1d", timedelta(days=1)),
    ("overdue", timedelta(0)),
)
RIGHTS_CLOSED = ("fulfilled", "refused", "withdrawn")
BREACH_RESOLVED = ("not_required", "notified_on_time", "notified_late_with_reasons",
                   "notified_late_without_reasons")
#: Findings that restate an overdue alert while their case is open.
RESTATING = {"breach_not_notified", "dsr_overdue", "dsr_promise_missed"}


def alert_id(controller: str, case: str, threshold: str) -> str:
    """The deterministic id of one alert. ``case`` is ``kind:id``; ``threshold`` is
    ``name@anchor``. Same inputs, same id, everywhere."""
    return str(uuid.uuid5(NAMESPACE, f"{controller}\n{case}\n{threshold}"))


@dataclass(frozen=True, slots=True)
class Planned:
    """One alert a case calls for: ``due_at`` (UTC) is when it must be emitted."""

    id: str
    controller: str
    kind: str  # breach | rights_request | finding
    case_id: str
    threshold: str  # 48h, 60h, 71h, overdue, due-7d, due-1d, legal_overdue, raised
    due_at: datetime
    payload: dict[str, Any] = field(default_factory=dict, compare=False)
    #: The deadline this threshold counts down to (``where_it_stands``); None: alone.
    series: str | None = field(default=None, compare=False)

    @property
    def case(self) -> str:
        return f"{self.kind}:{self.case_id}"


def end_of_local_day(d: date, tz: str) -> datetime:
    """When a date deadline ends: 00:00 of the next day in ``tz``, as UTC (a DST day is
    still the whole local day)."""
    return datetime.combine(d + timedelta(days=1), time(0), zone(tz)).astimezone(UTC)


def plan_breach(controller: str, breach: dict[str, Any]) -> list[Planned]:
    """Alerts of one breach (a ``queries.breaches`` row)."""
    if breach.get("aware_at") is None or breach.get("notified_at") is not None:
        return []
    if breach.get("status") in BREACH_RESOLVED or breach.get("risk") == "unlikely":
        return []
    aware = parse_rfc3339(breach["aware_at"]).astimezone(UTC)
    due = format_rfc3339(aware + timedelta(hours=72))
    bid = breach["breach_id"]
    out = []
    for name, delta in BREACH_THRESHOLDS:
        at = aware + delta
        out.append(Planned(
            alert_id(controller, f"breach:{bid}", f"{name}@{due}"), controller, "breach", bid,
            name, at, {"deadline": "authority_due", "deadline_at": due,
                       "aware_at": format_rfc3339(aware), "risk": breach.get("risk"),
                       "message": _breach_message(bid, name, due)}, f"breach:{bid}|{due}"))
    return out


def _breach_message(bid: str, name: str, due: str) -> str:
    if name == "overdue":
        return f"breach {bid}: 72 hours passed, the supervisory authority was not notified"
    return (f"breach {bid}: {name} since awareness; notify the supervisory authority by"
            f" {due}")


def plan_rights_request(controller: str, req: dict[str, Any], tz: str) -> list[Planned]:
    """Alerts of one rights request (a ``queries.rights_requests`` row); ``tz`` is the
    controller's time zone, in which its date deadlines end."""
    if req.get("status") in RIGHTS_CLOSED or req.get("binding_due") is None:
        return []
    rid = req["request_id"]
    binding = date.fromisoformat(req["binding_due"])
    legal_s = req.get("extended_due") if req.get("extended") else req.get("due")
    end = end_of_local_day(binding, tz)
    base = {"deadline": "binding_due", "deadline_date": binding.isoformat(),
            "deadline_at": format_rfc3339(end), "right": req.get("right"),
            "subject": req.get("subject")}
    series = f"rights_request:{rid}|{binding.isoformat()}"
    out = []
    for name, delta in RIGHTS_THRESHOLDS:
        out.append(Planned(
            alert_id(controller, f"rights_request:{rid}", f"{name}@{binding.isoformat()}"),
            controller, "rights_request", rid, name, end - delta,
            {**base, "message": _rights_message(rid, name, binding)}, series))
    if legal_s and legal_s != req["binding_due"]:
        legal = date.fromisoformat(legal_s)
        lend = end_of_local_day(legal, tz)
        out.append(Planned(
            alert_id(controller, f"rights_request:{rid}", f"legal_overdue@{legal_s}"),
            controller, "rights_request", rid, "legal_overdue", lend,
            {**base, "deadline": "extended_due" if req.get("extended") else "due",
             "deadline_date": legal_s, "deadline_at": format_rfc3339(lend),
             "message": f"rights request {rid}: the legal deadline {legal_s} has passed"},
            series))
    return out


def _rights_message(rid: str, name: str, due: date) -> str:
    if name == "overdue":
        return f"rights request {rid}: not answered by {due.isoformat()}"
    days = 7 if name == "due-7d" else 1
    return f"rights request {rid}: due {due.isoformat()} ({days} day{'s' * (days > 1)} left)"


def evidence_digest(evidence: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(evidence).encode()).hexdigest()[:32]


def finding_case(finding: dict[str, Any]) -> str:
    """The case a finding is about, for its id: the request, breach or activity it names,
    else the code."""
    for k in ("request_id", "breach_id", "activity_id", "recipient_id"):
        if finding.get(k):
            return f"{k.removesuffix('_id')}:{finding[k]}"
    return str(finding["code"])


def plan_finding(controller: str, finding: dict[str, Any], seen_at: datetime,
                 open_cases: set[str] | frozenset[str] = frozenset()) -> list[Planned]:
    """The ``raised`` alert of one finding (a ``queries.findings`` row), due at
    ``seen_at``; none for a finding restating an open case's overdue alert
    (``open_cases`` holds ``request:<id>`` / ``breach:<id>`` of open cases)."""
    code = finding["code"]
    case = finding_case(finding)
    if code in RESTATING and (code == "breach_not_notified" or case in open_cases):
        return []
    digest = evidence_digest(finding.get("evidence") or [])
    return [Planned(
        alert_id(controller, f"finding:{code}:{case}", f"raised@{digest}"), controller,
        "finding", f"{code}:{case}", "raised", seen_at,
        {"code": code, "severity": finding.get("severity"), "detail": finding.get("detail"),
         "evidence": list(finding.get("evidence") or []), "message": finding.get("detail")})]


def deadline_alerts(kind: str, deadline: str, due_at: datetime) -> list[dict[str, str]]:
    """The alert instants of one row of the deadlines board (``queries.deadlines``):
    ``[{"threshold", "at"}]``, the same arithmetic as the planners above, so the board
    shows when a responder will be alerted."""
    if kind == "breach":
        aware = due_at - timedelta(hours=72)
        pairs = [(n, aware + d) for n, d in BREACH_THRESHOLDS]
    elif deadline == "binding_due":
        pairs = [(n, due_at - d) for n, d in RIGHTS_THRESHOLDS]
    else:
        pairs = [("legal_overdue", due_at)]
    return [{"threshold": n, "at": format_rfc3339(at)} for n, at in pairs]


#: The kinds whose thresholds form a series towards one deadline (findings stand alone).
SERIES_KINDS = ("breach", "rights_request")



def series_of(kind: str, case_id: str, payload: dict[str, Any]) -> str | None:
    """The series of a stored alert, from its payload (rows planned before ``series``
    was kept). A breach's 48h … overdue share ``breach:<id>|<authority_due>``; a rights
    request's due-7d, due-1d, overdue and legal_overdue share
    ``rights_request:<id>|<binding date>`` (a moved date is a new series); findings
    have none. An old ``legal_overdue`` row cannot name its binding date and gets a
    series of its own, which only ever makes a case look seen."""
    if kind == "breach" and payload.get("deadline_at"):
        return f"breach:{case_id}|{payload['deadline_at']}"
    if kind == "rights_request" and payload.get("deadline_date"):
        if payload.get("deadline") == "binding_due":
            return f"rights_request:{case_id}|{payload['deadline_date']}"
        return f"rights_request:{case_id}|legal:{payload['deadline_date']}"
    return None


def where_it_stands(planned: Iterable[Planned], now: datetime,
                    seen: set[str] | frozenset[str] = frozenset()) -> set[str]:
    """The ids of thresholds a case has already passed by when it is first seen, except
    the latest: a case first seen overdue raises one ``overdue`` alert, not "7 days
    left", "1 day left" and "overdue" at once (and one ``legal_overdue`` when the legal
    date has passed too: the worse of the two is where it stands).

    ``seen`` holds the series (``Planned.series``) that already have alerts in the outbox:
    those are not first seen, and their thresholds are emitted as usual (late, after
    downtime — never skipped). Thresholds still ahead of ``now`` are untouched and fire
    when reached. Pure: the caller marks the returned ids ``superseded``, so a restart,
    which plans the same ids again, does not raise them either."""
    passed: dict[str, list[Planned]] = {}
    for p in planned:
        if p.series is not None and p.series not in seen and p.due_at <= now:
            passed.setdefault(p.series, []).append(p)
    out: set[str] = set()
    for ps in passed.values():
        latest = max(ps, key=lambda p: (p.due_at, p.id))
        out.update(p.id for p in ps if p is not latest)
    return out
