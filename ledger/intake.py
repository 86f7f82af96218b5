"""The intake topic: producers that write envelopes straight to Kafka.

``auditledger.intake.v1`` carries raw envelopes (one per record, the bytes a producer
would POST). The worker reads it ``read_committed`` in a consumer group, runs exactly the
ingest checks (``Ingestor.submit``), and in ONE Kafka transaction of the sequencer:
appends the accepted events (with their checkpoints), sends every rejected record to
``auditledger.rejected.v1`` (value = the original bytes unchanged; headers ``code``,
``detail``, ``event_id`` and where it came from), and commits the group's offsets with
``send_offsets_to_transaction``. So an intake record is either fully handled once
(appended, duplicate, or rejected with a trace) or, if anything fails, not at all and
read again: never dropped silently, never processed twice.

The worker MUST run in the sequencer's process (it uses the ``KafkaLog``'s transactional
producer). ``serve`` on a Kafka ledger starts it with
``IntakeWorker(ledger, lock=app.state.ingest_lock).start()`` and ``stop()``s it on exit.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from contextlib import AbstractContextManager
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.structs import OffsetAndMetadata

from ledger.ingest import Result
from ledger.log.kafka import Fenced, KafkaLog
from ledger.registry import Registry
from ledger.service import Ledger

log = logging.getLogger(__name__)


def rejection_headers(res: Result, tp: TopicPartition, offset: int) -> list[tuple[str, bytes]]:
    headers = [("code", (res.code or "").encode()), ("detail", (res.detail or "").encode()),
               ("source", f"{tp.topic}/{tp.partition}/{offset}".encode())]
    if res.event_id:
        headers.append(("event_id", res.event_id.encode()))
    return headers


class IntakeWorker:
    """Consume-check-append loop over the intake topic, exactly once per record."""

    def __init__(self, ledger: Ledger, max_records: int = 1000, group_id: str | None = None,
                 poll_ms: int = 200, lock: AbstractContextManager[Any] | None = None) -> None:
        """``lock``: the lock every other ``ledger.submit`` caller holds (the API's
        ingest lock); the worker holds it for each batch's whole transaction."""
        if not isinstance(ledger.log, KafkaLog):
            raise TypeError("the intake worker needs a Kafka ledger")
        self.ledger = ledger
        self.log: KafkaLog = ledger.log
        self.group_id = group_id or f"{ledger.cfg.kafka_topic_prefix}.intake"
        self.poll_ms = poll_ms
        self.consumer = KafkaConsumer(
            self.log.topic_intake,
            bootstrap_servers=ledger.cfg.kafka_bootstrap,
            group_id=self.group_id,
            client_id="auditledger-intake",
            enable_auto_commit=False,  # offsets go in the sequencer's transaction
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_poll_records=max_records,
        )
        self.lock: AbstractContextManager[Any] = lock or contextlib.nullcontext()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.processed = 0
        self.rejected = 0

    def run_once(self, timeout_ms: int | None = None) -> int:
        """Poll once and handle what came; returns how many records were handled."""
        polled = self.consumer.poll(timeout_ms=self.poll_ms if timeout_ms is None
                                    else timeout_ms)
        records = [(tp, r) for tp, recs in polled.items() for r in recs]
        if not records:
            self.log.checkpoint_due()  # keep checkpoints at least every second
            return 0
        items = [r.value for _, r in records]
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, r in records:
            offsets[tp] = OffsetAndMetadata(r.offset + 1, "", -1)
        try:
            with self.lock, self.log.transaction() as txn:
                results = self.ledger.submit(items)
                for (tp, rec), res in zip(records, results, strict=True):
                    if res.status == "rejected":
                        txn.send(self.log.topic_rejected, rec.value, rec.key,
                                 rejection_headers(res, tp, rec.offset))
                txn.send_offsets(offsets, self.consumer.group_metadata())
        except BaseException:
            self._rewind(records)
            raise
        self.processed += len(records)
        self.rejected += sum(r.status == "rejected" for r in results)
        return len(records)

    def _rewind(self, records: list[tuple[TopicPartition, Any]]) -> None:
        """Nothing of the batch happened: read it again, and forget the registry view
        the aborted appends may have advanced."""
        first: dict[TopicPartition, int] = {}
        for tp, r in records:
            first.setdefault(tp, r.offset)
        for tp, offset in first.items():
            self.consumer.seek(tp, offset)
        ing = self.ledger.ingestor
        ing.registry = Registry()
        ing._seen_seq = 0
        ing.refresh()

    def run(self) -> None:
        """Until ``stop()``; transient failures (broker away) are retried, fencing ends."""
        while not self._stop.is_set():
            try:
                self.run_once()
            except Fenced:
                log.error("intake: this sequencer was fenced; stopping")
                raise
            except Exception:
                log.exception("intake batch failed; it will be read again")
                time.sleep(1.0)

    def start(self) -> IntakeWorker:
        """Become the sequencer now (fencing an older one and signing what it left
        unsigned), then consume on a daemon thread."""
        with self.lock:
            self.log.acquire()
            self.log.checkpoint_due(force=True)
        self._thread = threading.Thread(target=self.run, name="auditledger-intake",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.consumer.close()
