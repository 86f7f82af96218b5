"""The Kafka intake path refuses what POST refuses (issue #14, items 2, 4 and 7): a
duplicate member name, deep nesting and an invalid time are each one record's rejection
with a trace on the rejected topic; the good records beside them are appended, once, and
the log verifies."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ledger.intake import IntakeWorker
from ledger.log.kafka import KafkaLog
from ledger.verify import LogSource, verify_source
from tests.conftest import CONTROLLER
from tests.kafka.test_intake import drain, kafka_world, produce
from tests.kafka.test_log_kafka import read_committed

pytestmark = pytest.mark.kafka


def test_intake_rejects_duplicate_names_depth_and_bad_times(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    world = kafka_world(tmp_path, kafka_bootstrap)
    ledger = world.ledger
    log = ledger.log
    assert isinstance(log, KafkaLog)
    try:
        good = [world.event(subject=f"u{i}@example.org") for i in range(4)]
        dup = orjson.dumps(world.event()).replace(
            b'"method":"web_form"', b'"method":"web_form","method":"phone"')
        deep = orjson.dumps(world.event(data={"purposes": ["x"], "method": "m",
                                              "notice_version": "v", "ext": {"d": 0}}))
        deep = deep.replace(b'"d":0', b'"d":' + b"[" * 400 + b"]" * 400)
        leap = orjson.dumps(world.event(occurred_at="2026-06-30T23:59:60Z"))
        values = [orjson.dumps(good[0]), dup, orjson.dumps(good[1]), deep, leap,
                  orjson.dumps(good[2]), orjson.dumps(good[3])]
        produce(kafka_bootstrap, log.topic_intake, values)
        size_before = log.size(CONTROLLER)
        worker = IntakeWorker(ledger)
        drain(worker, len(values))
        worker.consumer.close()
        assert worker.rejected == 3
        stored = [e.event_id for e in log.events(controller=CONTROLLER)][size_before:]
        assert stored == [e["event_id"] for e in good]
        rejected = read_committed(kafka_bootstrap, log.topic_rejected)
        codes = [dict(r.headers)["code"].decode() for r in rejected]  # type: ignore[attr-defined]
        assert codes == ["malformed_json", "schema_violation", "schema_violation"]
        assert [r.value for r in rejected] == [dup, deep, leap]  # type: ignore[attr-defined]
        ledger.flush()
        assert verify_source(LogSource(log), [ledger.verifier_key]).ok
    finally:
        ledger.close()
