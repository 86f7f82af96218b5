"""A case first seen past several thresholds raises one alert for where it stands.

The pure rule (``thresholds.where_it_stands``) from a table, then the scheduler: a
rights request loaded already overdue, a breach first seen at aware + 65 h, and a
restart that must not raise the superseded thresholds after all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.clock import FixedClock
from projections.alerts.outbox import Outbox
from projections.alerts.scheduler import AlertScheduler
from projections.alerts.thresholds import plan_breach, plan_rights_request, where_it_stands
from projections.runner import ProjectionRunner
from projections.store import SQLiteStore
from tests.alerts.alerting import NOW
from tests.alerts.test_thresholds import C, breach, request
from tests.projections.projection_streams import Scenario, ts

AWARE = datetime(2026, 12, 24, 15, tzinfo=UTC)
END = datetime(2026, 12, 21, 23, tzinfo=UTC)  # the end of 2026-12-21 in Oslo


def kept(planned, now, seen=frozenset()):  # type: ignore[no-untyped-def]
    """The thresholds left pending or ahead once the superseded ones are taken out."""
    gone = where_it_stands(planned, now, seen)
    return [p.threshold for p in planned if p.id not in gone]


@pytest.mark.parametrize(("hours", "expected"), [
    (1, ["48h", "60h", "71h", "overdue"]),  # nothing passed yet
    (48, ["48h", "60h", "71h", "overdue"]),  # exactly one passed: itself
    (59, ["48h", "60h", "71h", "overdue"]),
    (60, ["60h", "71h", "overdue"]),  # 48h superseded by 60h
    (65, ["60h", "71h", "overdue"]),  # the brief's aware + 65 h: one "60h", 71h still ahead
    (71.5, ["71h", "overdue"]),
    (72, ["overdue"]),
    (500, ["overdue"]),
])
def test_breach_first_seen_late(hours: float, expected: list[str]):
    assert kept(plan_breach(C, breach()), AWARE + timedelta(hours=hours)) == expected


@pytest.mark.parametrize(("now", "expected"), [
    (END - timedelta(days=8), ["due-7d", "due-1d", "overdue", "legal_overdue"]),
    (END - timedelta(days=3), ["due-7d", "due-1d", "overdue", "legal_overdue"]),
    (END - timedelta(hours=2), ["due-1d", "overdue", "legal_overdue"]),
    (END, ["overdue", "legal_overdue"]),
    (END + timedelta(days=40), ["legal_overdue"]),  # the law missed too: that is where
])
def test_rights_request_first_seen_late(now: datetime, expected: list[str]):
    # promised 2026-12-21, legal date 2027-01-20: legal_overdue is its own deadline
    plans = plan_rights_request(C, request(due="2027-01-20"), "Europe/Oslo")
    assert kept(plans, now) == expected


def test_a_series_already_seen_is_not_collapsed():
    plans = plan_breach(C, breach())
    series = {plans[0].series}
    # back after downtime: every passed threshold is emitted, late, none skipped
    assert kept(plans, AWARE + timedelta(hours=80), series) == ["48h", "60h", "71h",
                                                                 "overdue"]


def test_moved_deadline_is_a_new_series():
    old = plan_rights_request(C, request(), "Europe/Oslo")
    moved = plan_rights_request(C, request(binding_due="2026-12-24", due="2026-12-24"),
                                "Europe/Oslo")
    seen = {old[0].series}
    assert old[0].series != moved[0].series
    at = datetime(2026, 12, 24, 12, tzinfo=UTC)  # the new date's due-7d and due-1d passed
    assert kept(moved, at, seen) == ["due-1d", "overdue"]


def sync(s: Scenario, store: SQLiteStore) -> None:
    s.flush()
    ProjectionRunner(s.source(), store).run_once()


def test_scheduler_rights_request_loaded_overdue_raises_one_overdue(
        tmp_path, scenario: Scenario, store: SQLiteStore, clock: FixedClock):
    got = NOW - timedelta(days=45)  # received 17 Oct: binding 16 Nov, overdue now
    scenario.add("rights_request.received", {"request_id": "r9", "right": "access",
                 "received_at": ts(got)}, got, "erin")
    sync(scenario, store)
    ob = Outbox(tmp_path / "a.sqlite")
    emitted = [a for a in AlertScheduler(store, ob, clock).tick() if a["kind"] != "finding"]
    # both the promised (binding) and the legal date passed: the legal one is where it
    # stands
    assert [(a["case"], a["threshold"]) for a in emitted] == [("r9", "legal_overdue")]
    assert emitted[0]["deadline_date"] < NOW.date().isoformat()
    assert "left" not in emitted[0]["message"]
    assert sorted(a["threshold"] for a in ob.alerts("superseded")) == [
        "due-1d", "due-7d", "overdue"]
    ob.close()
    ob = Outbox(tmp_path / "a.sqlite")  # restart: the superseded ones stay superseded
    clock.advance(timedelta(hours=1))
    assert [a for a in AlertScheduler(store, ob, clock).tick(force=True)
            if a["kind"] != "finding"] == []
    assert len(ob.alerts("superseded")) == 3
    ob.close()


def test_scheduler_breach_first_seen_at_65h_then_later_thresholds_fire(
        scenario: Scenario, store: SQLiteStore, outbox: Outbox, clock: FixedClock):
    aware = NOW - timedelta(hours=65)
    scenario.add("breach.aware", {"breach_id": "b65", "aware_at": ts(aware)}, aware)
    sync(scenario, store)
    sched = AlertScheduler(store, outbox, clock)
    first = [a for a in sched.tick() if a["kind"] == "breach"]
    assert [a["threshold"] for a in first] == ["60h"]
    assert [a["threshold"] for a in outbox.alerts("superseded")] == ["48h"]
    clock.set(aware + timedelta(hours=71))
    assert [a["threshold"] for a in sched.tick() if a["kind"] == "breach"] == ["71h"]
    clock.set(aware + timedelta(hours=72))
    assert [a["threshold"] for a in sched.tick() if a["kind"] == "breach"] == ["overdue"]
    assert [a["threshold"] for a in outbox.alerts("emitted") if a["kind"] == "breach"] == [
        "60h", "71h", "overdue"]
