"""One controller's events that cannot be interpreted stop neither the scheduler nor
another controller's alerts (issue #14)."""

from __future__ import annotations

from datetime import timedelta

from eventsourcing.persistence import Tracking

from ledger.clock import FixedClock
from ledger.envelope import complete
from ledger.signing import public_key_text
from projections.alerts.outbox import Outbox
from projections.alerts.scheduler import AlertScheduler
from projections.runner import ProjectionRunner
from projections.store import SQLiteStore, Writes, dumps
from tests.alerts.alerting import CID, NOW
from tests.projections.projection_streams import Scenario, ts

OTHER = "SE-5560000001"


def _other_overdue_breach(s: Scenario) -> None:
    s.ledger.register_controller(OTHER, {"name": "Annat AB", "country": "SE",
                                         "timezone": "Europe/Stockholm"})
    s.ledger.register_producer(OTHER, "app", public_key_text(s.key), ["*"])
    aware = NOW - timedelta(hours=80)
    s.pending.append(complete({"type": "breach.aware", "controller": OTHER,
                               "occurred_at": ts(aware),
                               "data": {"breach_id": "b-other", "aware_at": ts(aware)}},
                              s.key, "app"))


def test_unprocessable_events_do_not_stop_another_controllers_overdue_alert(
        scenario: Scenario, store: SQLiteStore, outbox: Outbox, clock: FixedClock) -> None:
    aware = NOW - timedelta(hours=1)
    scenario.add("breach.aware", {"breach_id": "b-ok", "aware_at": ts(aware)}, aware)
    bad = [
        scenario.append_raw("breach.aware", {"breach_id": "b-bad", "aware_at": ts(aware)},
                            "0001-01-01T00:00:00+23:59"),
        scenario.append_raw("rights_request.received", {
            "request_id": "r-bad", "right": "access", "received_at": "2026-06-30T23:59:60Z"},
            ts(aware), subject="ann"),
        scenario.append_raw("breach.detected", {"breach_id": "b-x", "description": "x",
                                                "detected_at": "0000-01-01T00:00:00Z"},
                            ts(aware)),
    ]
    _other_overdue_breach(scenario)
    scenario.flush()
    ProjectionRunner(scenario.source(), store).run_once()  # does not raise
    sched = AlertScheduler(store, outbox, clock)
    emitted = sched.tick()
    assert sched.failures == {}
    overdue = [a for a in emitted if a["controller"] == OTHER and a["threshold"] == "overdue"]
    assert [a["case"] for a in overdue] == ["b-other"]
    raised = {a["evidence"][0] for a in emitted
              if a["kind"] == "finding" and a["code"] == "unprocessable_event"}
    assert raised == set(bad)
    # CID's good breach is planned as usual
    assert [a["threshold"] for a in outbox.alerts("pending", [CID])] == ["48h", "60h", "71h",
                                                                        "overdue"]


def test_a_controller_whose_read_model_cannot_be_read_does_not_stop_the_others(
        scenario: Scenario, store: SQLiteStore, outbox: Outbox, clock: FixedClock) -> None:
    """A store written before the checks existed: one case of CID holds a time off the
    calendar (that case is left out), and later CID's controller entry itself cannot be
    read (CID is not planned, and is retried): OTHER's overdue alert is sent each time."""
    _other_overdue_breach(scenario)
    scenario.flush()
    runner = ProjectionRunner(scenario.source(), store)
    runner.run_once()
    w = Writes()
    w.entities[("breach", CID, "b-old")] = dumps(
        {"breach_id": "b-old", "events": ["e1"],
         "aware": {"aware_at": "9999-12-31T23:00:00Z", "event_id": "e1"}})
    store.commit(w, Tracking("tamper/0", 1))  # not the runner's position
    sched = AlertScheduler(store, outbox, clock)
    emitted = sched.tick()
    assert sched.failures == {}
    breach_alerts = {(a["controller"], a["threshold"]) for a in emitted
                     if a["kind"] == "breach"}
    assert (OTHER, "overdue") in breach_alerts and all(c == OTHER for c, _ in breach_alerts)
    assert any(a["code"] == "unprocessable_event" for a in emitted if a["kind"] == "finding")

    w = Writes()
    w.entities[("controller", CID, CID)] = dumps(["not", "an", "object"])
    store.commit(w, Tracking("tamper/0", 2))
    aware = NOW - timedelta(hours=1)
    scenario.pending.append(complete({"type": "breach.aware", "controller": OTHER,
                                      "occurred_at": ts(aware),
                                      "data": {"breach_id": "b-2", "aware_at": ts(aware)}},
                                     scenario.key, "app"))
    scenario.flush()
    ProjectionRunner(scenario.source(), store).run_once()
    clock.advance(timedelta(hours=72))
    emitted = sched.tick(force=True)
    assert CID in sched.failures and OTHER not in sched.failures
    assert ("b-2", "overdue") in {(a["case"], a["threshold"]) for a in emitted
                                  if a["controller"] == OTHER}
