"""The events topic as an event source: one tracked position per topic-partition.

``auditledger.events.v1`` is keyed by controller (``ledger.log.kafka.partition_for``), so a
controller's events are in one partition, in leaf order — all the projections need. The
runner keeps one position per partition, ``"<topic>/<partition>"`` = the next offset to
read, committed in the same transaction as the rows of the batch it ends (exactly once,
like the SQLite log's ``"log/0"``).

A row's ``seq`` is ``offset + 1``: unique and increasing within a partition, hence within
a controller, which is what the read models key on. Offsets are not leaf indexes (the
transaction markers leave gaps), and a store fed from the topic is therefore not
byte-identical to one fed from the SQLite log index: the facts are, the ``seq`` columns
are not (tests/kafka/test_projections_kafka.py compares the two without them).

The consumer reads ``read_committed``: records of an aborted or open sequencer
transaction are never projected. It has no consumer group: positions live in the read-model
store, not in Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from projections.prefetch import Prefetcher, Row

#: How long one read waits for records it knows are there (the broker answers in ms).
READ_TIMEOUT_S = 60.0


class KafkaSource:
    def __init__(self, bootstrap: str, topic: str) -> None:
        self.source = topic
        self.topic = topic
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap,
            client_id="auditledger-projections",
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            request_timeout_ms=30_000,
        )
        found = self.consumer.partitions_for_topic(topic)
        if not found:
            self.consumer.close()
            raise LookupError(f"Kafka topic {topic!r} not found")
        self._partitions = sorted(found)

    def partitions(self) -> Sequence[int]:
        return self._partitions

    def _end(self, tp: TopicPartition) -> int:
        """The last stable offset (``read_committed``): nothing at or after it is
        committed yet."""
        return int(self.consumer.end_offsets([tp])[tp])

    def read_rows(self, partition: int, after: int, limit: int) -> list[Row]:
        """Committed records from offset ``after`` on (``after`` is the next offset the
        store has not applied), at most ``limit``, as ``(offset + 1, type, controller,
        body)``."""
        tp = TopicPartition(self.topic, partition)
        end = self._end(tp)
        rows: list[Row] = []
        if after >= end:
            return rows
        self.consumer.assign([tp])
        self.consumer.seek(tp, after)
        deadline = time.monotonic() + READ_TIMEOUT_S
        while len(rows) < limit and self.consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {self.topic}/{partition}: stuck before {end}")
            polled = self.consumer.poll(timeout_ms=500, max_records=limit - len(rows))
            for record in polled.get(tp, ()):
                if record.offset >= end or len(rows) >= limit:
                    break
                rows.append(_row(record))
        return rows

    def lag(self, partition: int, after: int) -> int:
        """Offsets not yet applied (transaction markers included: an upper bound)."""
        return max(0, self._end(TopicPartition(self.topic, partition)) - after)

    splits = False

    def prefetch(self, partition: int, after: int, chunk: int,
                 shard_fd: int | None = None) -> Prefetcher | None:
        return None  # the broker already streams ahead of the consumer

    def close(self) -> None:
        self.consumer.close()


def _row(record: Any) -> Row:
    """A record as a log row. The sequencer always sets the ``type`` header and the key
    (the controller); a record written to the topic some other way may lack them, and
    must not stop the projections of every tenant: they are read from the envelope
    then, and a record that has neither becomes a row no handler takes (counted, and
    the projection records an event it cannot read as ``unprocessable_event``)."""
    headers = dict(record.headers or ())
    type_, key = headers.get("type"), record.key
    if type_ is None or key is None:
        try:
            env = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            env = None
        env = env if isinstance(env, dict) else {}
        type_ = type_ if type_ is not None else str(env.get("type", "")).encode()
        key = key if key is not None else str(env.get("controller", "")).encode()
    return (record.offset + 1, type_.decode(errors="replace"), key.decode(errors="replace"),
            record.value)
