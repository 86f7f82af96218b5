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

On a per-partition ledger (``kafka_sequencers: per-partition``) the same consumer group
is the **sequencer group**: every ``serve`` subscribes to the intake topic, and the
process the group assigns intake partition ``p`` is the sequencer of events partition
``p`` (same number; both topics have the same partitions). It takes the partition with
``KafkaLog.assign`` (``init_transactions()`` on ``<prefix>.sequencer.<p>`` fences the
previous owner, then it catches up and signs), handles each partition's records in that
partition's transaction, and gives the partition up in the group's revocation callback.
An intake record whose controller belongs to another partition (a producer that keyed
it otherwise) is moved to the right intake partition in the same transaction.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from contextlib import AbstractContextManager
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.structs import OffsetAndMetadata

from ledger.config import ConfigError
from ledger.ingest import Result
from ledger.log.kafka import Fenced, KafkaLog, NotSequencer, partition_for
from ledger.service import Ledger

log = logging.getLogger(__name__)


def rejection_headers(res: Result, tp: TopicPartition, offset: int) -> list[tuple[str, bytes]]:
    headers = [("code", (res.code or "").encode()), ("detail", (res.detail or "").encode()),
               ("source", f"{tp.topic}/{tp.partition}/{offset}".encode())]
    if res.event_id:
        headers.append(("event_id", res.event_id.encode()))
    return headers


# How fast the group notices a dead sequencer (``kill -9``): no heartbeat for this long
# removes it. 6 s is the broker's default ``group.min.session.timeout.ms``.
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 1000


def controller_of(value: bytes) -> str | None:
    """The ``controller`` member of a raw envelope, if it has a readable one."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    c = doc.get("controller") if isinstance(doc, dict) else None
    return c if isinstance(c, str) else None


_owners_cache: dict[str, tuple[float, dict[str, str | None]]] = {}


def group_owners(log: KafkaLog, group_id: str, max_age: float = 1.0) -> dict[str, str | None]:
    """Events partition -> the ``member`` name (API URL) of the group member assigned it,
    None while nobody is (a rebalance, or every sequencer down). From the group
    coordinator (``DescribeGroups``), at most once per ``max_age`` seconds."""
    from kafka import KafkaAdminClient

    cached = _owners_cache.get(group_id)
    if cached is not None and time.monotonic() - cached[0] < max_age:
        return cached[1]
    owners: dict[str, str | None] = {
        str(p): None for p in range(log.partitions[log.topic_events])}
    try:
        admin = KafkaAdminClient(bootstrap_servers=log.cfg.kafka_bootstrap,
                                 client_id="auditledger-readyz", request_timeout_ms=5000)
    except Exception:
        return owners
    try:
        doc = admin.describe_groups([group_id])[group_id]
        for m in doc.get("members", []):
            assignment = m.get("member_assignment") or {}
            for t in assignment.get("assigned_partitions", []) or []:
                if t.get("topic") == log.topic_intake:
                    for p in t.get("partitions", []):
                        owners[str(p)] = m.get("client_id")
    except Exception as exc:
        log_ = logging.getLogger(__name__)
        log_.debug("describe_groups failed: %r", exc)
    finally:
        admin.close()
    _owners_cache[group_id] = (time.monotonic(), owners)
    return owners


def sequencer_status(log: KafkaLog, group_id: str,
                     worker: IntakeWorker | None = None) -> dict[str, Any]:
    """What ``/readyz`` says about sequencing: the mode, the events partitions this
    process sequences and, per partition, which member of the group does."""
    out: dict[str, Any] = {
        "mode": "per-partition" if log.per_partition else "one",
        "partitions": log.partitions[log.topic_events],
        "sequencing": log.sequenced() if log.per_partition else
        ("all" if worker is not None else []),
    }
    if log.per_partition:
        out["group"] = group_id
        out["member"] = worker.member if worker is not None else None
        out["owners"] = group_owners(log, group_id)
    return out


class _Rebalance(ConsumerRebalanceListener):
    """The group's callbacks run on the consumer's network thread, which must keep
    heartbeating: revocation stops the partitions' writes at once (waiting only for a
    transaction in flight), assignment is taken by the worker thread after ``poll``."""

    def __init__(self, worker: IntakeWorker) -> None:
        self.worker = worker

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.worker._revoked({tp.partition for tp in revoked})

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.worker._assigned_now({tp.partition for tp in assigned})

    def on_partitions_lost(self, lost: Any) -> None:
        self.worker._revoked({tp.partition for tp in lost})


class IntakeWorker:
    """Consume-check-append loop over the intake topic, exactly once per record."""

    def __init__(self, ledger: Ledger, max_records: int = 1000, group_id: str | None = None,
                 poll_ms: int = 200, lock: AbstractContextManager[Any] | None = None,
                 member: str | None = None) -> None:
        """``lock``: the lock every other ``ledger.submit`` caller holds (the API's
        ingest lock); the worker holds it for each batch's whole transaction.
        ``member``: how this process names itself in the sequencer group (its API URL),
        shown to the other members' ``/readyz``."""
        if not isinstance(ledger.log, KafkaLog):
            raise TypeError("the intake worker needs a Kafka ledger")
        self.ledger = ledger
        self.log: KafkaLog = ledger.log
        self.group_id = group_id or f"{ledger.cfg.kafka_topic_prefix}.intake"
        self.poll_ms = poll_ms
        self.per_partition = self.log.per_partition
        self.member = member or "auditledger-intake"
        kw: dict[str, Any] = {}
        if self.per_partition:
            n_events = self.log.partitions[self.log.topic_events]
            n_intake = self.log.partitions[self.log.topic_intake]
            if n_events != n_intake:
                raise ConfigError(
                    f"per-partition sequencers need as many intake partitions as events"
                    f" partitions ({n_intake} != {n_events})")
            kw = {"session_timeout_ms": SESSION_TIMEOUT_MS,
                  "heartbeat_interval_ms": HEARTBEAT_MS,
                  "max_poll_interval_ms": 60_000}
        self.consumer = KafkaConsumer(
            *(() if self.per_partition else (self.log.topic_intake,)),
            bootstrap_servers=ledger.cfg.kafka_bootstrap,
            group_id=self.group_id,
            client_id=self.member,
            enable_auto_commit=False,  # offsets go in the sequencer's transaction
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_poll_records=max_records,
            **kw,
        )
        self.lock: AbstractContextManager[Any] = lock or contextlib.nullcontext()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: set[int] | None = None  # assigned by the group, not yet taken
        self._rejoin = False
        self._state = threading.Lock()
        self.processed = 0
        self.rejected = 0
        self.assignments = 0
        if self.per_partition:
            self.log.on_demand = False
            self.log.on_fenced = self._fenced
            self._subscribe()

    # -- the sequencer group (per-partition ledgers) -------------------------------------

    def _subscribe(self) -> None:
        self.consumer.subscribe([self.log.topic_intake], listener=_Rebalance(self))

    def _revoked(self, partitions: set[int]) -> None:
        with self._state:
            self._pending = None
        if partitions:
            log.info("sequencer group: giving up events partitions %s", sorted(partitions))
        self.log.release(sorted(partitions))

    def _assigned_now(self, partitions: set[int]) -> None:
        with self._state:
            self._pending = set(partitions)

    def _fenced(self, partition: int) -> None:
        """Another process took this partition's transactional id: the group will say
        who owns it now; ask it (rejoin) rather than keep a partition we cannot write."""
        self._rejoin = True

    def _take_assignment(self) -> None:
        """On the worker thread: become the sequencer of what the group assigned."""
        with self._state:
            pending, self._pending = self._pending, None
        if self._rejoin:
            self._rejoin = False
            self.consumer.unsubscribe()
            self._subscribe()
            return
        if pending is not None:
            t0 = time.monotonic()
            with self.lock:
                failed = self.log.assign(sorted(pending))
            self.assignments += 1
            log.info("sequencer group: sequencing events partitions %s (%.0f ms)%s",
                     sorted(pending), (time.monotonic() - t0) * 1000,
                     f"; not yet {failed}" if failed else "")
        elif self.per_partition:
            missing = [p for p in self.owned() if p not in self.log.sequenced()]
            if missing:
                with self.lock:
                    self.log.retry_assigned(missing)

    def owned(self) -> list[int]:
        """The events partitions the group assigned to this process."""
        if not self.per_partition:
            return []
        return sorted(tp.partition for tp in self.consumer.assignment())

    def status(self) -> dict[str, Any]:
        """For ``/readyz``: see ``sequencer_status``."""
        return sequencer_status(self.log, self.group_id, self)

    # -- the consume-check-append loop ----------------------------------------------------

    def run_once(self, timeout_ms: int | None = None) -> int:
        """Poll once and handle what came; returns how many records were handled."""
        polled = self.consumer.poll(timeout_ms=self.poll_ms if timeout_ms is None
                                    else timeout_ms)
        if self.per_partition:
            self._take_assignment()
        records = [(tp, r) for tp, recs in polled.items() for r in recs]
        if not records:
            self.log.checkpoint_due()  # keep checkpoints at least every second
            return 0
        if not self.per_partition:
            return self._handle(None, records)
        by_part: dict[int, list[tuple[TopicPartition, Any]]] = {}
        for tp, r in records:
            by_part.setdefault(tp.partition, []).append((tp, r))
        done = 0
        for p, recs in by_part.items():
            if p not in self.log.sequenced():
                self._seek_back(recs)  # not taken (yet): read again once it is
                continue
            done += self._handle(p, recs)
        return done

    def _handle(self, partition: int | None,
                records: list[tuple[TopicPartition, Any]]) -> int:
        """One transaction: the records' events, rejections and consumer offsets."""
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, r in records:
            offsets[tp] = OffsetAndMetadata(r.offset + 1, "", -1)
        mine, moved = records, []
        if partition is not None:
            n = self.log.partitions[self.log.topic_intake]
            mine, moved = [], []
            for tp, r in records:
                c = controller_of(r.value)
                (moved if c is not None and partition_for(c, n) != partition
                 else mine).append((tp, r))
        results: list[Result] = []
        try:
            with self.lock, self.log.transaction(partition) as txn:
                results = self.ledger.submit([r.value for _, r in mine]) if mine else []
                for (tp, rec), res in zip(mine, results, strict=True):
                    if res.status == "rejected":
                        txn.send(self.log.topic_rejected, rec.value, rec.key,
                                 rejection_headers(res, tp, rec.offset))
                for _, rec in moved:  # to the partition of its controller, exactly once
                    c = controller_of(rec.value)
                    assert c is not None
                    txn.send(self.log.topic_intake, rec.value, rec.key, list(rec.headers or []),
                             partition_for(c, self.log.partitions[self.log.topic_intake]))
                txn.send_offsets(offsets, self.consumer.group_metadata())
        except BaseException:
            self._rewind(records)
            raise
        self.processed += len(records)
        self.rejected += sum(r.status == "rejected" for r in results)
        return len(records)

    def _seek_back(self, records: list[tuple[TopicPartition, Any]]) -> None:
        first: dict[TopicPartition, int] = {}
        for tp, r in records:
            first.setdefault(tp, r.offset)
        for tp, offset in first.items():
            with contextlib.suppress(Exception):  # a partition revoked meanwhile
                self.consumer.seek(tp, offset)

    def _rewind(self, records: list[tuple[TopicPartition, Any]]) -> None:
        """Nothing of the batch happened: read it again, and forget the registry view
        the aborted appends may have advanced."""
        self._seek_back(records)
        self.ledger.ingestor.reread()

    def run(self) -> None:
        """Until ``stop()``; transient failures (broker away) are retried, fencing ends."""
        while not self._stop.is_set():
            try:
                self.run_once()
            except (Fenced, NotSequencer) as exc:
                if not self.per_partition:
                    log.error("intake: this sequencer was fenced; stopping")
                    raise
                log.warning("intake: %s; the group decides who sequences it now", exc)
            except Exception:
                log.exception("intake batch failed; it will be read again")
                time.sleep(1.0)

    def start(self) -> IntakeWorker:
        """Become the sequencer now (fencing an older one and signing what it left
        unsigned), then consume on a daemon thread."""
        if not self.per_partition:  # per partition: the group's assignment does this
            with self.lock:
                self.log.acquire()
                self.log.checkpoint_due(force=True)
        self._thread = threading.Thread(target=self.run, name="auditledger-intake",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Leaving the group (``close``) hands this process's partitions to the others
        at once, without waiting for the session timeout."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.per_partition:
            with contextlib.suppress(Exception), self.lock:
                self.log.checkpoint_due(force=True)  # sign before handing over
        self.consumer.close()
        if self.per_partition:
            self.log.release(self.log.sequenced())
