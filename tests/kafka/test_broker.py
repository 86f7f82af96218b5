"""The test broker really behaves like the Kafka the ledger relies on (kafka-python 3.0.x)."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

pytestmark = pytest.mark.kafka

LEDGER_TOPIC_CONFIGS = {
    "cleanup.policy": "delete",
    "retention.ms": "-1",
    "retention.bytes": "-1",
    "min.insync.replicas": "1",
    "unclean.leader.election.enable": "false",
}


def _topic_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _create_topic(bootstrap: str, name: str, configs: dict[str, str] | None = None) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            {name: {"num_partitions": 1, "replication_factor": 1, "configs": configs or {}}},
            wait_for_metadata=True,
        )
    finally:
        admin.close()


def _transactional_producer(bootstrap: str) -> KafkaProducer:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=f"test-{uuid.uuid4().hex}",
        acks="all",
        enable_idempotence=True,
        max_block_ms=60_000,
    )
    producer.init_transactions()
    return producer


def _read_all(bootstrap: str, topic: str, isolation_level: str) -> list[bytes]:
    """Every record of partition 0 visible at ``isolation_level``, read to the end."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        isolation_level=isolation_level,
        request_timeout_ms=30_000,
    )
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        # end_offsets honours the isolation level: the LSO for read_committed.
        end = consumer.end_offsets([tp])[tp]
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while consumer.position(tp) < end:
            assert time.monotonic() < deadline, f"stuck at {consumer.position(tp)} < {end}"
            for records in consumer.poll(timeout_ms=500).values():
                values.extend(r.value for r in records)
        return values
    finally:
        consumer.close()


def test_topic_configs_round_trip(kafka_bootstrap: str) -> None:
    topic = _topic_name("cfg")
    _create_topic(kafka_bootstrap, topic, LEDGER_TOPIC_CONFIGS)

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs=list(LEDGER_TOPIC_CONFIGS))],
            config_filter="all",
        )
    finally:
        admin.close()

    entries = described["topic"][topic]
    for key, expected in LEDGER_TOPIC_CONFIGS.items():
        assert entries[key]["value"] == expected, (key, entries[key])
        assert entries[key]["config_source"] == "DYNAMIC_TOPIC_CONFIG", (key, entries[key])


def test_transactions_read_committed_sees_only_committed(kafka_bootstrap: str) -> None:
    topic = _topic_name("txn")
    _create_topic(kafka_bootstrap, topic)
    producer = _transactional_producer(kafka_bootstrap)
    try:
        producer.begin_transaction()
        producer.send(topic, b"committed-1")
        producer.send(topic, b"committed-2")
        producer.commit_transaction()

        producer.begin_transaction()
        producer.send(topic, b"aborted-1")
        producer.send(topic, b"aborted-2")
        producer.flush()  # the aborted records really reach the log
        producer.abort_transaction()

        producer.begin_transaction()
        producer.send(topic, b"committed-3")
        producer.commit_transaction()
    finally:
        producer.close(timeout=10)

    assert _read_all(kafka_bootstrap, topic, "read_committed") == [
        b"committed-1",
        b"committed-2",
        b"committed-3",
    ]
    # Sanity: the aborted records are in the log, only hidden by read_committed.
    uncommitted = _read_all(kafka_bootstrap, topic, "read_uncommitted")
    assert b"aborted-1" in uncommitted and b"aborted-2" in uncommitted


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_committed_data_survives_broker_restart(kafka_broker, how: str) -> None:
    bootstrap = kafka_broker.bootstrap
    topic = _topic_name(f"restart-{how}")
    _create_topic(bootstrap, topic, LEDGER_TOPIC_CONFIGS)
    producer = _transactional_producer(bootstrap)
    try:
        producer.begin_transaction()
        for i in range(5):
            producer.send(topic, f"event-{i}".encode())
        producer.commit_transaction()
    finally:
        producer.close(timeout=10)
    assert _read_all(bootstrap, topic, "read_committed") == [
        f"event-{i}".encode() for i in range(5)
    ]

    getattr(kafka_broker, how)()  # stop(): SIGTERM, clean; kill(): SIGKILL, crash
    assert not kafka_broker.is_running()
    assert kafka_broker.start() == bootstrap  # same dir -> same address

    assert _read_all(bootstrap, topic, "read_committed") == [
        f"event-{i}".encode() for i in range(5)
    ]
    # And the restarted broker still takes new transactional writes.
    producer = _transactional_producer(bootstrap)
    try:
        producer.begin_transaction()
        producer.send(topic, b"after-restart")
        producer.commit_transaction()
    finally:
        producer.close(timeout=10)
    assert _read_all(bootstrap, topic, "read_committed")[-1] == b"after-restart"
