"""A ledger on a local three-broker KRaft cluster (``infra/kafka/broker start --brokers 3``).

Its topics get three replicas and ``min.insync.replicas`` 2. While a producer posts to
``auditledger serve`` without pause, the test SIGKILLs the events partition's leader
(ingest goes on), then the new leader (one broker left: below min.insync, and no
controller majority; nothing may be acknowledged), then restarts both. Every event
acknowledged over HTTP is then in the events topic exactly once, read straight from Kafka,
and ``auditledger verify`` passes, also on an index rebuilt from the topics.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from ledger.config import Config
from ledger.log.kafka import TOPICS, ensure_topics
from tests.conftest import CONTROLLER
from tests.kafka.conftest import LocalKafkaCluster
from tests.serving import Producer, Serve, log_event_ids, make_data, verify_data

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# How long ingest may stall after a broker dies or returns. kafka-python 3.0.12 does not
# re-send a transaction's AddPartitionsToTxn after its coordinator died, so when the
# killed broker was the sequencer's transaction coordinator the open transaction waits
# for its batches to expire (the producer's delivery_timeout_ms, 120 s) before the ledger
# aborts and retries (docs/deployment.md, "Known gap"). Nothing is acknowledged meanwhile.
STALL_S = 200.0


def _describe(bootstrap: str, topics: list[str]) -> dict[str, list[dict]]:
    """Partitions (leader_id, replica_nodes, isr_nodes) of each topic."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20_000)
    try:
        return {d["name"]: d["partitions"] for d in admin.describe_topics(topics)}
    finally:
        admin.close()


def _leader(bootstrap: str, topic: str, exclude: set[int], timeout: float = 60) -> int:
    """The node now leading partition 0 of ``topic``, once it is none of ``exclude``."""
    deadline = time.monotonic() + timeout
    while True:
        leader = _describe(bootstrap, [topic])[topic][0]["leader_id"]
        if leader > 0 and leader not in exclude:
            return leader
        assert time.monotonic() < deadline, f"no new leader of {topic} (still {leader})"
        time.sleep(0.5)


def _wait_for_acks(producer: Producer, n: int, timeout: float, what: str) -> float:
    """Until ``n`` more events are acknowledged; returns the seconds it took."""
    t0 = time.monotonic()
    target = len(producer.acked) + n
    while len(producer.acked) < target:
        assert time.monotonic() - t0 < timeout, (
            f"{what}: {len(producer.acked)} of {target} acknowledged after {timeout:.0f}s")
        time.sleep(0.05)
    return time.monotonic() - t0


def _events_in_kafka(bootstrap: str, topic: str) -> list[str]:
    """The ``event_id`` header of every committed record of the events topic, in order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             isolation_level="read_committed", request_timeout_ms=30_000)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)  # the last stable offset, for read_committed
        ids: list[str] = []
        deadline = time.monotonic() + 120
        while any(consumer.position(tp) < end[tp] for tp in parts):
            assert time.monotonic() < deadline, "events topic not read to its end"
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    ids.append(dict(r.headers)["event_id"].decode())
        return ids
    finally:
        consumer.close()


def test_ledger_topics_on_the_cluster_have_three_replicas_and_min_insync_two(
    tmp_path: Path, kafka_cluster: LocalKafkaCluster
) -> None:
    cfg = Config(data_dir=tmp_path, backend="kafka", kafka_bootstrap=kafka_cluster.bootstrap,
                 kafka_topic_prefix=f"rf-{uuid.uuid4().hex[:8]}")
    assert cfg.kafka_replication_factor is None  # the default: min(3, brokers)
    ensure_topics(cfg)
    names = [cfg.kafka_topic(t) for t in TOPICS]
    desc = _describe(kafka_cluster.bootstrap, [*names, "__transaction_state"])
    for name, parts in desc.items():
        for p in parts:
            assert sorted(p["replica_nodes"]) == [1, 2, 3], (name, p)
            assert sorted(p["isr_nodes"]) == [1, 2, 3], (name, p)
    admin = KafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap)
    try:
        got = admin.describe_configs([
            ConfigResource(ConfigResourceType.TOPIC, n,
                           configs=["min.insync.replicas", "unclean.leader.election.enable"])
            for n in names])["topic"]
    finally:
        admin.close()
    for name in names:
        assert got[name]["min.insync.replicas"]["value"] == "2", (name, got[name])
        assert got[name]["unclean.leader.election.enable"]["value"] == "false", name


@pytest.mark.timeout(720)
def test_two_brokers_killed_during_ingest_lose_no_acknowledged_event(
    tmp_path: Path, kafka_cluster: LocalKafkaCluster
) -> None:
    prefix = f"cl-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AUDITLEDGER_KAFKA_TOPIC_PREFIX": prefix}
    world = make_data(tmp_path, env=env, kafka=kafka_cluster.bootstrap)
    topic = f"{prefix}.events.v1"
    serve = Serve(world["data"], env=env).start(timeout=120)
    # A producer that must deliver: a batch whose answer it did not get is sent again until
    # answered (idempotent: an event already in the log comes back "duplicate").
    producer = Producer(serve.url, world["producer"], world["key"])
    timings: dict[str, float] = {}
    marks: list[tuple[str, float]] = []
    try:
        producer.run(size=50, resubmit=True, timeout=20)
        _wait_for_acks(producer, 200, 120, "before any fault")

        # 1. The events partition's leader dies: a new leader is elected, ingest goes on.
        first = _leader(kafka_cluster.bootstrap, topic, exclude=set())
        kafka_cluster.kill(first)
        marks.append((f"killed {first}", time.time()))
        timings["one down: 300 acks"] = _wait_for_acks(producer, 300, STALL_S, "one broker down")
        live = ",".join(kafka_cluster.node_bootstrap(n) for n in (1, 2, 3) if n != first)
        isr = _describe(live, [topic])[topic][0]["isr_nodes"]
        assert first not in isr and len(isr) == 2, isr  # the dead broker left the ISR

        # 2. The new leader dies too: one broker left, below min.insync.replicas (and no
        # controller majority). Writes wait or fail; none is acknowledged.
        second = _leader(live, topic, exclude={first})
        kafka_cluster.kill(second)
        marks.append((f"killed {second}", time.time()))
        time.sleep(4)  # answers to commits that completed before the kill may still arrive
        frozen = len(producer.acked)
        failures = producer.failures
        time.sleep(10)
        assert len(producer.acked) == frozen, "a write was acknowledged with one broker left"

        # 3. The first comes back: two of three again, ingest resumes (the held or resent
        # batches complete) while the second is still down.
        kafka_cluster.start(first)
        marks.append((f"started {first}", time.time()))
        timings["first back: 200 acks"] = _wait_for_acks(producer, 200, STALL_S, "first restarted")
        # 4. And the second: the cluster is whole.
        kafka_cluster.start(second)
        marks.append((f"started {second}", time.time()))
        timings["both back: 200 acks"] = _wait_for_acks(producer, 200, 120, "both restarted")
        producer.stop()
        # The outage really hit ingest: a request failed (and was sent again) or was held.
        assert producer.failures > failures or any(b - a > 10 for a, b in producer.requests)

        in_kafka = _events_in_kafka(kafka_cluster.bootstrap, topic)
        assert len(in_kafka) == len(set(in_kafka)), "an event twice in the events topic"
        lost = producer.acked - set(in_kafka)
        assert not lost, f"{len(lost)} of {len(producer.acked)} acknowledged events lost"
        listed = log_event_ids(serve.url, world["admin"])
        assert listed == in_kafka  # the ledger's index is exactly the topic, in order
    finally:
        producer.stop()
        serve.stop()
    print(f"\ncluster faults: {len(in_kafka)} events, {len(producer.acked)} acknowledged,"
          f" killed {first} then {second}, {producer.failures} failed requests, {timings}, "
          f"{[(m, time.strftime('%H:%M:%S', time.gmtime(t))) for m, t in marks]}")
    report = verify_data(world["data"], env=env)
    assert report["controllers"][CONTROLLER]["size"] == len(in_kafka)
    # The same log verifies from an index rebuilt from the topics alone.
    fresh = tmp_path / "fresh"
    shutil.copytree(world["data"], fresh)
    for index_file in fresh.glob("kafka-index.sqlite*"):
        index_file.unlink()
    report = verify_data(fresh, env=env)
    assert report["controllers"][CONTROLLER]["size"] == len(in_kafka)
