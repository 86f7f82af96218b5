"""Alerts on the ``<prefix>.alerts.v1`` topic of a real broker: emitted alerts are
produced with acks=all, key = controller, header ``alert_id``, value = the same canonical
JSON a webhook gets; a re-send after a crash carries the same id and bytes."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from ledger.clock import FixedClock
from projections.alerts.delivery import Deliverer
from projections.alerts.outbox import Outbox
from projections.alerts.sinks import alert_body
from projections.alerts.sinks.kafka import KafkaSink
from projections.alerts.thresholds import Planned, alert_id

pytestmark = pytest.mark.kafka
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)


def read_all(bootstrap: str, topic: str, expect: int, timeout: float = 30) -> list:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             isolation_level="read_committed", auto_offset_reset="earliest")
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        out: list = []
        deadline = time.monotonic() + timeout
        while len(out) < expect and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                out.extend(records)
        return out
    finally:
        consumer.close()


def test_alerts_topic_delivery(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"t{uuid.uuid4().hex[:8]}.alerts.v1"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}},
                            wait_for_metadata=True)
    finally:
        admin.close()
    outbox = Outbox(tmp_path / "alerts.sqlite")
    plans = [Planned(alert_id(c, f"breach:{b}", "48h@x"), c, "breach", b, "48h", NOW,
                     {"message": b}) for c, b in (("NO-1", "b1"), ("DK-2", "b2"), ("NO-1", "b3"))]
    for c in ("NO-1", "DK-2"):
        outbox.plan(c, [p for p in plans if p.controller == c], NOW)
    emitted = outbox.emit_due(NOW, global_sinks=["kafka"])
    sink = KafkaSink(kafka_bootstrap, topic)
    d = Deliverer(outbox, FixedClock(NOW), kafka=sink)
    try:
        assert d.run_once() == 3
        assert outbox.queue_length() == 0
        # a crash after the ack but before the outbox update re-sends: same id, same bytes
        sink.deliver(emitted[0], alert_body(emitted[0]))
    finally:
        d.stop()
        outbox.close()
    records = read_all(kafka_bootstrap, topic, 4)
    assert len(records) == 4
    by_id: dict[str, set[bytes]] = {}
    for r in records:
        (hid,) = [v.decode() for k, v in r.headers if k == "alert_id"]
        doc = orjson.loads(r.value)
        assert doc["id"] == hid and r.key.decode() == doc["controller"]
        by_id.setdefault(hid, set()).add(r.value)
    assert set(by_id) == {p.id for p in plans}
    assert all(len(v) == 1 for v in by_id.values())  # duplicates are byte-identical
    assert [orjson.loads(r.value)["seq"] for r in records[:3]] == [1, 2, 3]
