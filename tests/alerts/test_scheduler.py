"""Scheduler logic with the injectable clock: thresholds emitted at their instant, resolved
cases cancel their pending alerts, findings alert once, restarts neither lose nor repeat."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ledger.clock import FixedClock, format_rfc3339
from projections.alerts.outbox import Outbox
from projections.alerts.scheduler import AlertScheduler
from projections.alerts.thresholds import end_of_local_day
from projections.runner import ProjectionRunner
from projections.store import SQLiteStore
from tests.alerts.alerting import CID, NOW
from tests.projections.projection_streams import Scenario, ts

MS = timedelta(milliseconds=1)


def sync(s: Scenario, store: SQLiteStore) -> None:
    s.flush()
    ProjectionRunner(s.source(), store).run_once()


def test_breach_thresholds_fire_at_their_instant_and_notification_cancels(
        scenario: Scenario, store: SQLiteStore, outbox: Outbox, clock: FixedClock):
    aware = NOW - timedelta(hours=1)
    scenario.add("breach.aware", {"breach_id": "b1", "aware_at": ts(aware)}, aware)
    sync(scenario, store)
    sched = AlertScheduler(store, outbox, clock)
    assert sched.tick() == []
    assert [a["threshold"] for a in outbox.alerts("pending")] == ["48h", "60h", "71h",
                                                                  "overdue"]
    clock.set(aware + timedelta(hours=48) - MS)
    assert sched.tick() == []
    clock.set(aware + timedelta(hours=48))
    (a,) = sched.tick()
    assert (a["kind"], a["case"], a["threshold"], a["seq"]) == ("breach", "b1", "48h", 1)
    assert a["due_at"] == format_rfc3339(aware + timedelta(hours=48)) == a["emitted_at"]
    assert a["deadline_at"] == format_rfc3339(aware + timedelta(hours=72))
    # notified at +50 h: the 60 h, 71 h and overdue alerts are cancelled
    at = aware + timedelta(hours=50)
    scenario.add("breach.notified_authority", {"breach_id": "b1", "authority": "Datatilsynet",
                 "notified_at": ts(at), "phase": "initial"}, at)
    sync(scenario, store)
    clock.set(at)
    assert sched.tick() == []
    assert {x["threshold"] for x in outbox.alerts("cancelled")} == {"60h", "71h", "overdue"}
    clock.set(aware + timedelta(days=10))
    assert sched.tick(force=True) == []
    assert [x["threshold"] for x in outbox.alerts("emitted")] == ["48h"]


def test_unlikely_assessment_cancels(scenario: Scenario, store: SQLiteStore, outbox: Outbox,
                                     clock: FixedClock):
    scenario.add("breach.aware", {"breach_id": "b2", "aware_at": ts(NOW)}, NOW)
    sync(scenario, store)
    sched = AlertScheduler(store, outbox, clock)
    sched.tick()
    scenario.add("breach.assessed", {"breach_id": "b2", "risk": "unlikely",
                                     "subjects_approx": 1, "records_approx": 1,
                                     "data_categories": ["contact"]}, NOW)
    sync(scenario, store)
    clock.advance(timedelta(hours=80))
    assert sched.tick() == []
    assert len(outbox.alerts("cancelled")) == 4


def test_rights_request_thresholds_in_controller_zone(
        scenario: Scenario, store: SQLiteStore, outbox: Outbox, clock: FixedClock):
    # received 20 Nov 2026 in Oslo; promised within 30 days -> binding 2026-12-20,
    # by law 2026-12-21 (20 Dec is a Sunday)
    got = NOW.replace(month=11, day=20)
    scenario.add("rights_request.received", {"request_id": "r1", "right": "access",
                 "received_at": ts(got)}, got, "erin")
    sync(scenario, store)
    sched = AlertScheduler(store, outbox, clock)
    sched.tick()
    pending = {a["threshold"]: a for a in outbox.alerts("pending")}
    end = end_of_local_day(got.date().replace(day=20, month=12), "Europe/Oslo")
    assert format_rfc3339(end) == "2026-12-20T23:00:00.000Z"
    assert pending["due-7d"]["due_at"] == format_rfc3339(end - timedelta(days=7))
    assert pending["due-1d"]["due_at"] == format_rfc3339(end - timedelta(days=1))
    assert pending["overdue"]["due_at"] == format_rfc3339(end)
    assert pending["legal_overdue"]["deadline_date"] == "2026-12-21"
    clock.set(end - timedelta(days=7))
    assert [a["threshold"] for a in sched.tick()] == ["due-7d"]
    # fulfilled: the rest is cancelled
    at = end - timedelta(days=3)
    scenario.add("rights_request.fulfilled", {"request_id": "r1", "at": ts(at)}, at)
    sync(scenario, store)
    clock.set(at)
    sched.tick()
    clock.set(end + timedelta(days=30))
    assert sched.tick() == []
    assert {a["threshold"] for a in outbox.alerts("cancelled")} == {
        "due-1d", "overdue", "legal_overdue"}


def test_finding_raised_once(scenario: Scenario, store: SQLiteStore, outbox: Outbox,
                             clock: FixedClock):
    scenario.add("consent.withdrawn", {"purposes": ["marketing"], "method": "web_form"},
                 NOW - timedelta(days=1), "zed")
    sync(scenario, store)
    sched = AlertScheduler(store, outbox, clock)
    first = sched.tick()
    assert first and all(a["kind"] == "finding" and a["threshold"] == "raised" for a in first)
    codes = {a["code"] for a in first}
    clock.advance(timedelta(minutes=5))
    assert sched.tick(force=True) == []
    assert codes


def test_restart_neither_loses_nor_repeats(tmp_path, scenario: Scenario, store: SQLiteStore,
                                          clock: FixedClock):
    aware = NOW
    scenario.add("breach.aware", {"breach_id": "b3", "aware_at": ts(aware)}, aware)
    sync(scenario, store)
    ob = Outbox(tmp_path / "restart.sqlite")
    AlertScheduler(store, ob, clock).tick()
    clock.set(aware + timedelta(hours=48))
    assert len(AlertScheduler(store, ob, clock).tick()) == 1
    ob.close()  # "crash": a new process, a new scheduler, the same file
    clock.set(aware + timedelta(hours=72))  # down while 60 h, 71 h and 72 h passed
    ob = Outbox(tmp_path / "restart.sqlite")
    again = AlertScheduler(store, ob, clock).tick()
    assert [a["threshold"] for a in again] == ["60h", "71h", "overdue"]
    assert [a["seq"] for a in again] == [2, 3, 4]
    assert AlertScheduler(store, ob, clock).tick(force=True) == []
    assert [a["seq"] for a in ob.emitted_after(0, [CID])] == [1, 2, 3, 4]
    assert ob.emitted_after(0, ["DK-1"]) == []
    ob.close()


class CountingOutbox(Outbox):
    """A real outbox that also records how many alerts each ``plan`` was asked to write."""

    def __init__(self, path) -> None:  # type: ignore[no-untyped-def]
        super().__init__(path)
        self.written: list[int] = []

    def plan(self, controller, planned, now, scope=None, held=()):  # type: ignore[no-untyped-def]
        planned = list(planned)
        self.written.append(len(planned))
        return super().plan(controller, planned, now, scope, held)


def _states(ob: Outbox) -> set[tuple[str, str, str, str]]:
    return {(a["case"], a["threshold"], a["state"], a["due_at"]) for a in ob.alerts(limit=1000)}


@pytest.mark.parametrize("by_position", [False, True], ids=["all-findings", "new-findings"])
def test_incremental_plans_write_only_new_alerts_and_end_as_a_full_plan(
        tmp_path, scenario: Scenario, store: SQLiteStore, clock: FixedClock,
        by_position: bool):
    """A scan writes only the alerts its last plan had not (the outbox work of a scan is
    the new cases, not all of them) and, given the store's position (serve's worker),
    reads only the stored findings applied since; the outbox ends exactly as when every
    scan plans everything from scratch: new thresholds, cancellations and findings."""
    inc = CountingOutbox(tmp_path / "inc.sqlite")
    full = Outbox(tmp_path / "full.sqlite")
    reads: list[int] = []

    def position() -> int:
        p = ProjectionRunner(scenario.source(), store).position()
        reads.append(p)
        return p

    sched = AlertScheduler(store, inc, clock, position=position if by_position else None)

    def step() -> None:
        sync(scenario, store)
        sched.tick()
        AlertScheduler(store, full, clock).tick(force=True)
        assert _states(inc) == _states(full)

    aware = NOW - timedelta(hours=1)
    scenario.add("breach.aware", {"breach_id": "b1", "aware_at": ts(aware)}, aware)
    step()
    assert inc.written[-1] == 4
    scenario.add("breach.aware", {"breach_id": "b2", "aware_at": ts(NOW)}, NOW)
    step()
    assert inc.written[-1] == 4  # b2's four, not b1's again
    scenario.add("consent.withdrawn", {"purposes": ["marketing"], "method": "web_form"},
                 NOW, "zed")
    step()
    assert 0 < inc.written[-1] < 8  # the new findings only
    scenario.add("processing.performed", {"activity_id": "newsletter", "basis": "A6-1-a",
                 "data_categories": ["contact"], "purpose": "marketing"}, NOW, "zed")
    step()
    n = len(inc.alerts("emitted"))
    scenario.add("processing.performed", {"activity_id": "newsletter", "basis": "A6-1-a",
                 "data_categories": ["contact"], "purpose": "marketing"}, NOW, "amy")
    step()
    assert len(inc.alerts("emitted")) > n  # a stored finding of a later event: alerted
    assert bool(reads) == by_position
    clock.set(aware + timedelta(hours=48))
    scenario.add("breach.notified_authority", {"breach_id": "b1", "authority": "Datatilsynet",
                 "notified_at": ts(aware + timedelta(hours=48)), "phase": "initial"},
                 aware + timedelta(hours=48))
    step()
    assert {"60h", "71h", "overdue"} <= {a["threshold"] for a in inc.alerts("cancelled")}
    clock.set(NOW + timedelta(hours=80))
    scenario.add("breach.assessed", {"breach_id": "b2", "risk": "unlikely",
                                     "subjects_approx": 1, "records_approx": 1,
                                     "data_categories": ["contact"]}, NOW + timedelta(hours=1))
    step()
    assert sched.tick(force=True) == []
    assert _states(inc) == _states(full)
    inc.close()
    full.close()
