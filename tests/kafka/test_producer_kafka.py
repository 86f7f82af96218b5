"""The producer client's Kafka transport against a real broker and a real ``serve`` on a
Kafka ledger: events go straight to the intake topic; a ``kill -9`` of the business process
and a broker outage lose none, and none is stored twice. (Its other tests:
tests/producer/.)"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from ledger.client import Producer
from tests.conftest import CONTROLLER
from tests.kafka.conftest import LocalKafkaBroker
from tests.producer.crash import (
    assert_exactly_once,
    kill_9,
    log_key,
    read_accepted,
    start_emitter,
)
from tests.serving import Serve, log_event_ids, make_data

pytestmark = pytest.mark.kafka


def test_kafka_transport_survives_kill_9(tmp_path: Path, kafka_bootstrap: str) -> None:
    prefix = f"pc-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AUDITLEDGER_KAFKA_TOPIC_PREFIX": prefix}
    world = make_data(tmp_path, env=env, kafka=kafka_bootstrap)
    serve = Serve(world["data"], env=env).start(timeout=120)
    topic = f"{prefix}.intake.v1"
    try:
        before = log_event_ids(serve.url, world["admin"])
        outbox = tmp_path / "outbox.sqlite"
        proc = start_emitter({"key": str(world["key"]), "outbox": str(outbox),
                              "kafka": kafka_bootstrap, "topic": topic, "count": 1000,
                              "batch": 20})
        accepted: list[str] = []
        try:
            read_accepted(proc, accepted, 150)
        finally:
            kill_9(proc, accepted)
        p = Producer(producer="crm", key=world["key"], outbox=outbox, controller=CONTROLLER,
                     kafka=kafka_bootstrap, topic=topic, url=serve.url,
                     api_key=world["producer"], reader_api_key=world["admin"],
                     log_key=log_key(world["data"]))
        try:
            p.flush(timeout=120)
            assert p.metrics()["queued"] == 0
            deadline = time.monotonic() + 90
            while True:  # the intake worker sequences what the topic holds
                stored = log_event_ids(serve.url, world["admin"])
                if set(accepted) <= set(stored) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert_exactly_once(stored, accepted, before)
            rec = p.receipt(accepted[-1])
            assert rec is not None and rec["status"] == "delivered" and rec["index"] is None
            proof = p.check_inclusion(accepted[-1])
            assert p.receipt(accepted[-1])["index"] == proof["index"]  # type: ignore[index]
            assert proof["index"] == stored.index(accepted[-1])
        finally:
            p.close()
    finally:
        serve.stop()


def test_kafka_transport_rides_out_a_broker_outage(tmp_path: Path,
                                                   kafka_broker: LocalKafkaBroker) -> None:
    prefix = f"po-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AUDITLEDGER_KAFKA_TOPIC_PREFIX": prefix}
    bootstrap = kafka_broker.bootstrap
    world = make_data(tmp_path, env=env, kafka=bootstrap)
    serve = Serve(world["data"], env=env).start(timeout=120)
    consent = {"purposes": ["newsletter"], "method": "web_form", "notice_version": "v1"}
    try:
        before = log_event_ids(serve.url, world["admin"])
        p = Producer(producer="crm", key=world["key"], outbox=tmp_path / "outbox.sqlite",
                     controller=CONTROLLER, kafka=bootstrap, topic=f"{prefix}.intake.v1",
                     subject_key=b"k" * 32, timeout=5.0)
        try:
            ids = [p.emit("consent.given", consent, identifier=f"u{i}@example.org")
                   for i in range(50)]
            p.flush(timeout=60)
            kafka_broker.stop()
            slowest = 0.0
            for i in range(50, 250):  # the broker is down: emit must not wait for it
                began = time.monotonic()
                ids.append(p.emit("consent.given", consent, identifier=f"u{i}@example.org"))
                slowest = max(slowest, time.monotonic() - began)
            assert slowest < 1.0
            deadline = time.monotonic() + 60
            while p.metrics()["send_errors"] == 0:
                assert time.monotonic() < deadline, p.metrics()
                time.sleep(0.1)
            assert p.metrics()["queued"] > 0
            kafka_broker.start()
            p.flush(timeout=180)
        finally:
            p.close()
        deadline = time.monotonic() + 180
        while True:
            stored = log_event_ids(serve.url, world["admin"])
            if set(ids) <= set(stored) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert_exactly_once(stored, ids, before)
        assert len(stored) == len(before) + 250
    finally:
        serve.stop()
