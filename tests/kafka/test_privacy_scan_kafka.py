"""The privacy scan of tests/core/test_privacy_scan.py on the Kafka backend: the demo loaded
into a ledger on a real broker, then every record of every topic of that ledger (keys and
values), the local ``kafka-index`` and every other file of the data directory hold none of
the generated names, e-mail addresses or phone numbers in clear."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from pathlib import Path

from fastapi.testclient import TestClient
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from api.app import create_app
from ledger.config import Config
from ledger.demo import load_demo
from ledger.demo_people import People
from ledger.service import Ledger, init_data_dir
from tests.core.test_privacy_scan import EMAIL, PHONE, needles


def topic_bytes(bootstrap: str, prefix: str) -> dict[str, bytes]:
    """Every record (key and value) of the topics named ``prefix.…``, read to their end."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        topics = sorted(t for t in admin.list_topics() if t.startswith(prefix + "."))
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             isolation_level="read_committed", auto_offset_reset="earliest")
    out: dict[str, bytes] = {}
    try:
        for topic in topics:
            parts = [TopicPartition(topic, p)
                     for p in sorted(consumer.partitions_for_topic(topic) or ())]
            consumer.assign(parts)
            consumer.seek_to_beginning()
            ends = consumer.end_offsets(parts)
            chunks: list[bytes] = []
            deadline = time.monotonic() + 60
            while any(consumer.position(tp) < ends[tp] for tp in parts):
                assert time.monotonic() < deadline, f"{topic}: not read to its end"
                for records in consumer.poll(timeout_ms=500).values():
                    chunks += [r.key or b"" for r in records]
                    chunks += [r.value or b"" for r in records]
            out[topic] = b"\n".join(chunks)
    finally:
        consumer.close()
    return out


def test_no_topic_or_file_holds_personal_data_in_clear(kafka_bootstrap: str,
                                                       tmp_path: Path) -> None:
    data = tmp_path / "demo"
    cfg, _ = init_data_dir(data, kafka_bootstrap)
    prefix = f"privacy-{uuid.uuid4().hex[:10]}"
    replace(cfg, kafka_topic_prefix=prefix).save()
    people: dict[str, People] = {}
    summary = load_demo(data, progress=False, people=people)
    assert summary["verify"]["ok"] and sum(summary["loaded"].values()) > 1500
    ledger = Ledger.open(data)
    try:  # the read models too, built from the Kafka log
        client = TestClient(create_app(ledger))
        auth = {"Authorization": f"Bearer {summary['auditor_api_key']}"}
        answers = [client.get(f"/v1/controllers/{c}/{route}", headers=auth)
                   for c in people for route in ("rights-requests", "breaches", "report")]
        assert {r.status_code for r in answers} == {200}
    finally:
        ledger.close()
    assert Config.load(data).kafka_topic_prefix == prefix

    topics = topic_bytes(kafka_bootstrap, prefix)
    assert f"{prefix}.events.v1" in topics and len(topics[f"{prefix}.events.v1"]) > 500_000
    files = {str(p.relative_to(data)): p.read_bytes() for p in data.rglob("*") if p.is_file()}
    assert any(name.startswith("kafka-index") for name in files), sorted(files)
    wanted = needles(people)
    found: list[str] = []
    for where, blob in [*topics.items(), *files.items()]:
        found += [f"{where}: {n.decode()}" for n in wanted if n in blob]
        found += [f"{where}: e-mail {m.decode()}" for m in EMAIL.findall(blob)]
        found += [f"{where}: phone {m.decode()}" for m in PHONE.findall(blob)]
    assert not found, found[:20]
    # The scan is not blind: the sealed fields are in the topic, as ciphertext.
    assert b'"sealed":{"ct":' in topics[f"{prefix}.events.v1"]
    found_answers = [n for n in wanted for r in answers if n in r.content]
    assert not found_answers, found_answers[:5]
