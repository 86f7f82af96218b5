"""A broker restart while producers post to ``auditledger serve`` on a Kafka ledger: every
event acknowledged over HTTP is in the log exactly once, the read models catch up and
``auditledger verify`` passes. (tests/kafka/test_faults.py restarts the broker under a
``Ledger`` in the test's own process; this is the same fault through the served API.)"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import CONTROLLER
from tests.kafka.conftest import LocalKafkaBroker
from tests.serving import Producer, Serve, log_event_ids, make_data, verify_data

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _wait_for_acks(producer: Producer, n: int, timeout: float) -> None:
    target = len(producer.acked) + n
    deadline = time.monotonic() + timeout
    while len(producer.acked) < target:
        assert time.monotonic() < deadline, (len(producer.acked), target)
        time.sleep(0.05)


@pytest.mark.timeout(420)
def test_broker_restart_under_serve_loses_no_acknowledged_event(
    tmp_path: Path, kafka_broker: LocalKafkaBroker
) -> None:
    env = {**os.environ, "AUDITLEDGER_KAFKA_TOPIC_PREFIX": f"sf-{uuid.uuid4().hex[:8]}"}
    world = make_data(tmp_path, env=env, kafka=kafka_broker.bootstrap)
    serve = Serve(world["data"], env=env).start(timeout=90)
    # A producer that must deliver: a batch that failed is sent again until answered
    # (idempotent: an event already in the log comes back "duplicate").
    producer = Producer(serve.url, world["producer"], world["key"])
    try:
        producer.run(size=25, resubmit=True, timeout=120)
        _wait_for_acks(producer, 200, 120)
        bounced = threading.Event()
        outage: list[float] = []

        def bounce() -> None:
            kafka_broker.stop()
            outage.append(time.monotonic())
            time.sleep(1.0)
            kafka_broker.start()
            outage.append(time.monotonic())
            bounced.set()

        bouncer = threading.Thread(target=bounce)
        bouncer.start()
        bouncer.join(timeout=180)
        assert bounced.is_set(), "broker did not come back"
        _wait_for_acks(producer, 300, 180)  # ingest resumed after the restart
        producer.stop()
        # The fault hit ingest: some request was in flight while the broker was down
        # (it failed and was sent again, or the ledger held it until the broker was back).
        assert producer.overlapping(*outage) >= 1, "no request met the broker's outage"

        ids = log_event_ids(serve.url, world["admin"])
        assert len(ids) == len(set(ids)), "an event twice in the log"
        lost = producer.acked - set(ids)
        assert not lost, f"{len(lost)} of {len(producer.acked)} acknowledged events lost"
        doc = serve.wait_ready(120, lag0=True)
        assert doc["projections"]["worker"]["alive"] is True
    finally:
        producer.stop()
        serve.stop()
    report = verify_data(world["data"], env=env)
    assert report["controllers"][CONTROLLER]["size"] == len(ids)
