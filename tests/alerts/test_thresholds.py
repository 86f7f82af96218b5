"""The threshold arithmetic and alert ids, on plain read-model rows (no store, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger.clock import format_rfc3339
from projections.alerts.thresholds import (
    alert_id,
    deadline_alerts,
    end_of_local_day,
    plan_breach,
    plan_finding,
    plan_rights_request,
)

C = "NO-921119224"


def breach(**kw):  # type: ignore[no-untyped-def]
    row = {"breach_id": "b1", "status": "open", "aware_at": "2026-12-24T15:00:00.000Z",
           "risk": None, "notified_at": None}
    row.update(kw)
    return row


def request(**kw):  # type: ignore[no-untyped-def]
    row = {"request_id": "r1", "status": "open", "right": "access", "subject": "psn:x",
           "due": "2026-12-21", "extended_due": "2027-02-22", "promised_due": None,
           "binding_due": "2026-12-21", "extended": False}
    row.update(kw)
    return row


def test_breach_thresholds_are_elapsed_hours_from_awareness():
    plans = plan_breach(C, breach())
    aware = datetime(2026, 12, 24, 15, tzinfo=UTC)
    assert [(p.threshold, p.due_at) for p in plans] == [
        ("48h", aware + timedelta(hours=48)), ("60h", aware + timedelta(hours=60)),
        ("71h", aware + timedelta(hours=71)), ("overdue", aware + timedelta(hours=72))]
    assert plans[-1].payload["deadline_at"] == "2026-12-27T15:00:00.000Z"
    assert all(p.kind == "breach" and p.case_id == "b1" for p in plans)


def test_resolved_breaches_have_no_alerts():
    assert plan_breach(C, breach(notified_at="2026-12-25T10:00:00.000Z",
                                 status="notified_on_time")) == []
    assert plan_breach(C, breach(risk="unlikely", status="not_required")) == []
    assert plan_breach(C, breach(aware_at=None)) == []
    assert len(plan_breach(C, breach(risk="high"))) == 4
    assert len(plan_breach(C, breach(status="overdue"))) == 4  # still owed: keep alerting


def test_rights_thresholds_end_of_local_day():
    plans = plan_rights_request(C, request(), "Europe/Oslo")
    end = datetime(2026, 12, 21, 23, tzinfo=UTC)  # 22 Dec 00:00 in Oslo (UTC+1)
    assert end_of_local_day(datetime(2026, 12, 21).date(), "Europe/Oslo") == end
    assert [(p.threshold, p.due_at) for p in plans] == [
        ("due-7d", end - timedelta(days=7)), ("due-1d", end - timedelta(days=1)),
        ("overdue", end)]


def test_rights_end_of_day_across_dst():
    # 29 March 2026 is the spring-forward day in Oslo: the day ends at 22:00 UTC
    plans = plan_rights_request(C, request(binding_due="2026-03-29", due="2026-03-29"),
                                "Europe/Oslo")
    assert plans[-1].due_at == datetime(2026, 3, 29, 22, tzinfo=UTC)


def test_promise_earlier_than_law_adds_a_legal_overdue():
    plans = plan_rights_request(C, request(promised_due="2026-12-20", binding_due="2026-12-20"),
                                "UTC")
    names = [(p.threshold, p.due_at) for p in plans]
    assert ("overdue", datetime(2026, 12, 21, tzinfo=UTC)) in names
    assert ("legal_overdue", datetime(2026, 12, 22, tzinfo=UTC)) in names


def test_closed_or_waiting_requests_have_no_alerts():
    for status in ("fulfilled", "refused", "withdrawn"):
        assert plan_rights_request(C, request(status=status), "UTC") == []
    assert plan_rights_request(C, request(status="awaiting_identity", binding_due=None),
                               "UTC") == []


def test_ids_are_deterministic_and_distinct():
    a = [p.id for p in plan_breach(C, breach())]
    assert a == [p.id for p in plan_breach(C, breach())]
    assert len(set(a)) == 4
    assert a[0] == alert_id(C, "breach:b1", "48h@2026-12-27T15:00:00.000Z")
    assert a[0] not in {p.id for p in plan_breach("DK-1", breach())}
    # a moved deadline (valid extension) is a new alert; the old one is not reused
    moved = plan_rights_request(C, request(binding_due="2027-02-22", extended=True), "UTC")
    assert {p.id for p in moved}.isdisjoint(
        {p.id for p in plan_rights_request(C, request(), "UTC")})


def test_findings_raise_once_and_skip_restated_overdue():
    now = datetime(2026, 12, 1, tzinfo=UTC)
    f = {"code": "processing_without_consent", "severity": "high", "detail": "x",
         "evidence": ["e1"]}
    (p,) = plan_finding(C, f, now)
    assert p.due_at == now and p.threshold == "raised"
    assert plan_finding(C, f, now + timedelta(hours=1))[0].id == p.id
    assert plan_finding(C, {**f, "evidence": ["e2"]}, now)[0].id != p.id
    overdue = {"code": "dsr_overdue", "severity": "high", "detail": "x", "evidence": ["e1"],
               "request_id": "r1"}
    assert plan_finding(C, overdue, now, {"request:r1"}) == []
    assert len(plan_finding(C, overdue, now, set())) == 1  # answered late: a new fact
    assert plan_finding(C, {"code": "breach_not_notified", "evidence": [], "breach_id": "b"},
                        now) == []


def test_deadline_board_alert_instants_match_the_planners():
    b = plan_breach(C, breach())
    board = deadline_alerts("breach", "authority_due", b[-1].due_at)
    assert board == [{"threshold": p.threshold, "at": format_rfc3339(p.due_at)} for p in b]
    r = plan_rights_request(C, request(), "Europe/Oslo")
    board = deadline_alerts("rights_request", "binding_due", r[-1].due_at)
    assert board == [{"threshold": p.threshold, "at": format_rfc3339(p.due_at)} for p in r]
    assert deadline_alerts("rights_request", "due", r[-1].due_at) == [
        {"threshold": "legal_overdue", "at": format_rfc3339(r[-1].due_at)}]
