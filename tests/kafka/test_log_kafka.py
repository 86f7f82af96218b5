"""The Log contract on Kafka, plus what only the Kafka backend promises."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from ledger.clock import FixedClock
from ledger.config import Config
from ledger.log.kafka import TOPICS, Fenced, KafkaLog
from ledger.merkle import leaf_hash, root_of
from tests.log_contract import SIGNER, LogContract, prepared

pytestmark = pytest.mark.kafka

RECEIVED = "2026-11-20T12:00:00.000Z"


def kafka_config(path: Path, bootstrap: str, **kw: object) -> Config:
    """A ledger namespace of its own per data dir, so tests share one broker."""
    prefix = "t" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    return Config(data_dir=path, backend="kafka", kafka_bootstrap=bootstrap,
                  kafka_topic_prefix=prefix, **kw)  # type: ignore[arg-type]


def read_committed(bootstrap: str, topic: str) -> list[object]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                             isolation_level="read_committed")
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        out: list[object] = []
        while consumer.position(tp) < end:
            for recs in consumer.poll(timeout_ms=500).values():
                out.extend(recs)
        return out
    finally:
        consumer.close()


class TestKafkaLog(LogContract):
    @pytest.fixture(autouse=True)
    def _bootstrap(self, kafka_bootstrap: str) -> None:
        self.bootstrap = kafka_bootstrap

    def open_log(self, path: Path, clock: FixedClock) -> KafkaLog:
        return KafkaLog(kafka_config(path, self.bootstrap), SIGNER, clock)

    def forget_derived_state(self, path: Path) -> None:
        for suffix in ("", "-wal", "-shm"):
            path.joinpath("kafka-index.sqlite" + suffix).unlink(missing_ok=True)

    def test_topics_have_the_design_configs(self, log: KafkaLog) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            names = [log.cfg.kafka_topic(t) for t in TOPICS]
            assert names[0].endswith(".events.v1")
            got = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
            for name in names:
                conf = got["topic"][name]
                assert conf["cleanup.policy"]["value"] == "delete"
                assert conf["retention.ms"]["value"] == "-1"
                assert conf["retention.bytes"]["value"] == "-1"
                assert conf["min.insync.replicas"]["value"] == "1"  # replicas - 1, min 1
                assert conf["unclean.leader.election.enable"]["value"] == "false"
        finally:
            admin.close()

    def test_default_topic_names_are_the_design_names(self, tmp_path: Path) -> None:
        cfg = Config(data_dir=tmp_path, backend="kafka", kafka_bootstrap="x:1")
        assert [cfg.kafka_topic(t) for t in TOPICS] == [
            "auditledger.events.v1", "auditledger.intake.v1", "auditledger.rejected.v1",
            "auditledger.checkpoints.v1", "auditledger.alerts.v1"]
        assert cfg.kafka_txn_id == "auditledger.sequencer"

    def test_records_carry_the_leaf_and_indexes_not_offsets(self, log: KafkaLog) -> None:
        batch = [prepared() for _ in range(5)]
        log.append(batch, RECEIVED)
        log.append([prepared()], RECEIVED)  # a second transaction: a marker in between
        recs = read_committed(self.bootstrap, log.topic_events)
        assert [int(dict(r.headers)["index"]) for r in recs] == list(range(6))  # type: ignore[attr-defined]
        offsets = [r.offset for r in recs]  # type: ignore[attr-defined]
        assert offsets != list(range(6)), "transaction markers leave gaps in offsets"
        for r, p in zip(recs, batch, strict=False):
            assert r.value == p.body and r.key == b"NO-1"  # type: ignore[attr-defined]
            assert dict(r.headers)["leaf_hash"] == leaf_hash(p.body)  # type: ignore[attr-defined]
        cps = read_committed(self.bootstrap, log.topic_checkpoints)
        assert cps, "checkpoints written in the events' transaction"

    def test_index_is_rebuilt_from_the_topics(self, tmp_path: Path, clock: FixedClock) -> None:
        log = self.open_log(tmp_path, clock)
        batch = [prepared("NO-1") for _ in range(30)] + [prepared("DK-2") for _ in range(7)]
        log.append(batch, RECEIVED)
        log.checkpoint_due(force=True)
        cps = [c.size for c in log.checkpoints("NO-1")]
        log.close()
        tmp_path.joinpath("kafka-index.sqlite").unlink()
        for suffix in ("-wal", "-shm"):
            tmp_path.joinpath("kafka-index.sqlite" + suffix).unlink(missing_ok=True)
        log = self.open_log(tmp_path, clock)
        try:
            assert log.size("NO-1") == 30 and log.size("DK-2") == 7
            assert [c.size for c in log.checkpoints("NO-1")] == cps
            assert log.latest_checkpoint("NO-1").root == root_of(  # type: ignore[union-attr]
                [leaf_hash(p.body) for p in batch[:30]])
            more = log.append([prepared("NO-1")], RECEIVED)
            assert more[0].index == 30
        finally:
            log.close()

    def test_a_reader_does_not_fence_the_writer(self, tmp_path: Path, clock: FixedClock) -> None:
        writer = self.open_log(tmp_path, clock)
        writer.append([prepared()], RECEIVED)
        tmp_path.joinpath("replica").mkdir()
        from dataclasses import replace
        reader = KafkaLog(replace(kafka_config(tmp_path, self.bootstrap),
                                  data_dir=tmp_path / "replica"), SIGNER, clock)
        assert reader.size("NO-1") == 1
        assert reader.checkpoint_due(force=True) == []
        writer.append([prepared()], RECEIVED)  # still the sequencer
        assert writer.size("NO-1") == 2
        import time
        time.sleep(0.25)
        reader.last_seq()  # a reader (API replica, projection worker) follows the topics
        assert reader.size("NO-1") == 2
        assert reader.event_at("NO-1", 1) == writer.event_at("NO-1", 1)
        reader.close()
        writer.close()

    def test_second_sequencer_fences_the_first(self, tmp_path: Path, clock: FixedClock) -> None:
        tmp_path.joinpath("a").mkdir()
        first = self.open_log(tmp_path / "a", clock)
        first.append([prepared() for _ in range(3)], RECEIVED)
        # Another machine, same ledger (same topics, same transactional id), own index.
        cfg_b = kafka_config(tmp_path / "a", self.bootstrap)
        tmp_path.joinpath("b").mkdir()
        from dataclasses import replace
        second = KafkaLog(replace(cfg_b, data_dir=tmp_path / "b"), SIGNER, clock)
        second.acquire()  # init_transactions(): fences the first
        assert second.size("NO-1") == 3
        late = prepared()
        with pytest.raises(Fenced):
            first.append([late], RECEIVED)
        with pytest.raises(Fenced):
            first.append([prepared()], RECEIVED)  # and stays fenced
        stored = second.append([prepared()], RECEIVED)
        assert stored[0].index == 3
        ids = [dict(r.headers)["event_id"].decode()  # type: ignore[attr-defined]
               for r in read_committed(self.bootstrap, second.topic_events)]
        assert late.event_id not in ids and len(ids) == 4
        assert first.size("NO-1") == 3, "the fenced writer's index did not move"
        first.close()
        second.close()


def test_several_partitions_keep_each_controller_in_order(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    from ledger.log.kafka import partition_for

    clock = FixedClock(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    cfg = kafka_config(tmp_path, kafka_bootstrap, kafka_partitions=3)
    controllers = [f"NO-{i}" for i in range(8)]
    assert len({partition_for(c, 3) for c in controllers}) > 1
    log = KafkaLog(cfg, SIGNER, clock)
    batch = [prepared(controllers[i % 8]) for i in range(80)]
    log.append(batch, RECEIVED)
    log.checkpoint_due(force=True)
    roots = {c: log.latest_checkpoint(c).root for c in controllers}  # type: ignore[union-attr]
    log.close()
    tmp_path.joinpath("kafka-index.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        tmp_path.joinpath("kafka-index.sqlite" + suffix).unlink(missing_ok=True)
    log = KafkaLog(cfg, SIGNER, clock)
    try:
        assert log.partitions[log.topic_events] == 3
        for c in controllers:
            mine = [p for p in batch if p.controller == c]
            assert [e.event_id for e in log.events(controller=c)] == [p.event_id for p in mine]
            assert roots[c] == root_of([leaf_hash(p.body) for p in mine])
            assert log.latest_checkpoint(c).root == roots[c]  # type: ignore[union-attr]
    finally:
        log.close()


def test_a_gap_in_the_topic_is_refused(tmp_path: Path, kafka_bootstrap: str) -> None:
    from kafka import KafkaProducer

    from ledger.log.kafka import LogCorrupt

    clock = FixedClock(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    cfg = kafka_config(tmp_path, kafka_bootstrap)
    log = KafkaLog(cfg, SIGNER, clock)
    log.append([prepared()], RECEIVED)
    log.close()
    rogue = prepared()  # written around the sequencer, claiming leaf 5 of a 1-leaf tree
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(cfg.kafka_topic("events"), rogue.body, key=b"NO-1", partition=0, headers=[
        ("controller", b"NO-1"), ("index", b"5"), ("event_id", rogue.event_id.encode()),
        ("type", b"t"), ("producer", b"p"), ("occurred_at", b"x"), ("received_at", b"x"),
        ("leaf_hash", leaf_hash(rogue.body)), ("canon_hash", rogue.canon_hash)])
    producer.flush()
    producer.close()
    with pytest.raises(LogCorrupt, match="index 5 after 1"):
        KafkaLog(cfg, SIGNER, clock)
