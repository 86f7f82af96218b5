"""Real time, real HTTP: an alert reaches a webhook within 1 s of its threshold, and a
receiver that is down for a while gets every alert after it recovers, once per id.

One threshold a few seconds away on the system clock; everything else in this suite uses
the injectable clock. The lateness measured is printed (``-s``) and asserted < 1 s.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.clock import SystemClock, parse_rfc3339
from projections.alerts.delivery import RetryPolicy
from projections.alerts.outbox import Outbox
from projections.alerts.scheduler import AlertService
from projections.runner import ProjectionRunner
from projections.store import SQLiteStore
from tests.alerts.alerting import CID, Receiver
from tests.projections.projection_streams import Scenario, ts


@pytest.fixture
def service(scenario: Scenario, store: SQLiteStore, outbox: Outbox
            ) -> Iterator[AlertService]:
    runner = ProjectionRunner(scenario.source(), store)
    svc = AlertService(store, outbox, SystemClock(),
                       policy=RetryPolicy(base_s=0.2, max_delay_s=0.5, max_attempts=1000),
                       before_scan=runner.run_once)
    yield svc
    svc.stop()


def aware_so_that_48h_is_in(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=48) + timedelta(seconds=seconds)


def wait_for(cond, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_alert_delivered_within_one_second_of_threshold(
        scenario: Scenario, outbox: Outbox, service: AlertService, receiver: Receiver):
    receiver.secret = outbox.add_webhook(CID, receiver.url, datetime.now(UTC))["secret"]
    service.start()
    # the case arrives while the service runs, threshold 3 s away
    aware = aware_so_that_48h_is_in(3.0)
    scenario.add("breach.aware", {"breach_id": "rt1", "aware_at": ts(aware)}, aware)
    scenario.flush()
    wait_for(lambda: receiver.by_id, 10)
    (got,) = receiver.by_id.values()
    assert got["doc"]["threshold"] == "48h" and got["doc"]["case"] == "rt1"
    due = parse_rfc3339(got["doc"]["due_at"]).timestamp()
    lateness = got["at"] - due
    emitted_late = (parse_rfc3339(got["doc"]["emitted_at"]).timestamp() - due)
    print(f"\nthreshold -> webhook received: {lateness * 1000:.1f} ms"
          f" (emitted {emitted_late * 1000:.1f} ms after due)")
    assert 0 <= emitted_late < 1.0
    assert -0.01 <= lateness < 1.0  # ms-precision due_at: a hair early is rounding
    assert receiver.bad_signatures == 0


def test_receiver_down_for_a_while_gets_everything_once(
        tmp_path: Path, scenario: Scenario, outbox: Outbox, service: AlertService,
        receiver: Receiver):
    receiver.secret = outbox.add_webhook(CID, receiver.url, datetime.now(UTC))["secret"]
    for i, s in enumerate((0.5, 1.0, 1.5, 2.0, 2.5)):
        aware = aware_so_that_48h_is_in(s)
        scenario.add("breach.aware", {"breach_id": f"down{i}", "aware_at": ts(aware)}, aware)
    scenario.flush()
    receiver.stop()  # refused while all five thresholds pass
    service.start()
    wait_for(lambda: len(outbox.alerts("emitted")) == 5, 10)
    time.sleep(1.5)  # several failed attempts each
    tried = outbox.alerts("undelivered")
    assert len(tried) == 5 and all(a["deliveries"][0]["attempts"] >= 2 for a in tried)
    receiver.start()  # same port
    wait_for(lambda: len(receiver.by_id) == 5, 10)
    wait_for(lambda: outbox.queue_length() == 0, 5)
    time.sleep(1.0)  # nothing more arrives
    counts = Counter(receiver.ids())
    assert len(counts) == 5 and set(counts.values()) == {1}, counts
    assert {d["doc"]["case"] for d in receiver.by_id.values()} == {f"down{i}" for i in range(5)}
