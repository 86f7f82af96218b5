"""The intake topic: checked, appended or rejected with a trace, exactly once."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ledger.config import Config
from ledger.intake import IntakeWorker
from ledger.log.kafka import KafkaLog, KafkaTxn
from ledger.service import Ledger
from tests.conftest import CONTROLLER, make_world
from tests.kafka.test_log_kafka import read_committed

pytestmark = pytest.mark.kafka


def kafka_world(tmp_path: Path, bootstrap: str):  # type: ignore[no-untyped-def]
    """make_world, but the ledger's log is Kafka (own topic prefix)."""
    import tests.conftest as shared
    from ledger import service

    real = service.init_data_dir
    prefix = f"in-{uuid.uuid4().hex[:10]}"

    def init(data_dir: Path, kafka: str | None = None, log_key_name: str = "auditledger"):  # type: ignore[no-untyped-def]
        cfg, token = real(data_dir, bootstrap, log_key_name)
        cfg = Config(**{**cfg.__dict__, "kafka_topic_prefix": prefix})
        cfg.save()
        return cfg, token

    shared.init_data_dir, old = init, shared.init_data_dir  # type: ignore[assignment]
    try:
        return make_world(tmp_path)
    finally:
        shared.init_data_dir = old  # type: ignore[assignment]


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    try:
        for v in values:
            producer.send(topic, v, key=CONTROLLER.encode())
        producer.flush()
    finally:
        producer.close()


def drain(worker: IntakeWorker, want: int, rounds: int = 60) -> None:
    for _ in range(rounds):
        if worker.processed >= want:
            return
        worker.run_once(timeout_ms=500)
    raise AssertionError(f"only {worker.processed} of {want} intake records handled")


def committed_offset(bootstrap: str, group: str, topic: str) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                             enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close()


def test_intake_appends_rejects_and_commits_once(
    tmp_path: Path, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = kafka_world(tmp_path, kafka_bootstrap)
    ledger: Ledger = world.ledger
    log = ledger.log
    assert isinstance(log, KafkaLog)
    good = [world.event(subject=f"u{i}@example.org") for i in range(20)]
    forged = world.event()
    forged["data"]["notice_version"] = "v2"  # signature no longer matches
    values = [orjson.dumps(e) for e in good[:10]]
    values += [b"{not json", orjson.dumps(forged), orjson.dumps(good[3])]  # bad, bad, dup
    values += [orjson.dumps(e) for e in good[10:]]
    produce(kafka_bootstrap, log.topic_intake, values)

    worker = IntakeWorker(ledger, max_records=7)
    # The first batch's transaction fails at the very end: nothing of it may survive.
    real_send_offsets = KafkaTxn.send_offsets
    calls = {"n": 0}

    def flaky(self: KafkaTxn, offsets, meta) -> None:  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("injected failure before commit")
        real_send_offsets(self, offsets, meta)

    monkeypatch.setattr(KafkaTxn, "send_offsets", flaky)
    size_before = log.size(CONTROLLER)
    with pytest.raises(RuntimeError, match="injected"):
        worker.run_once(timeout_ms=5000)
    assert log.size(CONTROLLER) == size_before, "aborted batch left nothing in the index"
    drain(worker, len(values))
    try:
        assert worker.processed == len(values) and worker.rejected == 2
        assert log.size(CONTROLLER) == size_before + 20
        stored = [e.event_id for e in log.events(controller=CONTROLLER)][size_before:]
        assert stored == [e["event_id"] for e in good], "each good event once, in order"
        kafka_ids = [dict(r.headers)["event_id"].decode()  # type: ignore[attr-defined]
                     for r in read_committed(kafka_bootstrap, log.topic_events)]
        assert len(kafka_ids) == len(set(kafka_ids)) == size_before + 20
        rejected = read_committed(kafka_bootstrap, log.topic_rejected)
        codes = [dict(r.headers)["code"].decode() for r in rejected]  # type: ignore[attr-defined]
        assert codes == ["malformed_json", "bad_signature"]
        assert rejected[0].value == b"{not json"  # type: ignore[attr-defined]
        assert committed_offset(kafka_bootstrap, worker.group_id, log.topic_intake) == len(values)
        # A restarted worker in the same group finds nothing left to do.
        worker.consumer.close()
        again = IntakeWorker(ledger)
        assert again.run_once(timeout_ms=3000) == 0
        again.consumer.close()
    finally:
        ledger.close()


def test_worker_thread_under_the_api_lock(tmp_path: Path, kafka_bootstrap: str) -> None:
    import threading
    import time

    world = kafka_world(tmp_path, kafka_bootstrap)
    ledger: Ledger = world.ledger
    lock = threading.Lock()
    worker = IntakeWorker(ledger, lock=lock).start()
    try:
        events = [world.event(subject=f"t{i}@example.org") for i in range(5)]
        produce(kafka_bootstrap, ledger.log.topic_intake,  # type: ignore[attr-defined]
                [orjson.dumps(e) for e in events])
        deadline = time.monotonic() + 60
        while worker.processed < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        with lock:  # an HTTP submit at the same time simply waits its turn
            (res,) = ledger.submit([world.event()])
        assert worker.processed == 5 and res.index == 7
    finally:
        worker.stop()
        ledger.close()
