"""Kafka as the log of record, with a local rebuildable index for reads and proofs.

Why this shape
--------------
Kafka keeps the events durably and replicated, but it cannot answer "leaf 17 of
controller X" or "Merkle node (3, 5)" without a scan, and its offsets are not leaf
indexes (transaction markers leave gaps). So the ledger writes to Kafka FIRST and then
keeps a *derived* index of the topics in ``DIR/kafka-index.sqlite``: the very tables of
:class:`~ledger.log.sqlite.SQLiteLog` (this class subclasses it and reuses all of its
reads), plus the Kafka position up to which the index is complete. Delete the file and
the next open rebuilds it from the topics.

Write path (one sequencer = the single writer for the ledger's event partitions)
1. take the local write lock (``BEGIN IMMEDIATE`` on the index), become the writer if
   not yet (``init_transactions()`` fences any older sequencer with the same
   transactional id and aborts its open transaction; then catch the index up from the
   topics, ``read_committed``, to their end);
2. ``Sequencer.plan(batch)``: dense leaf indexes, Merkle nodes, due checkpoints;
3. write the plan into the index (not yet committed: duplicates of ``event_id`` fail
   here, before anything reaches Kafka);
4. ONE Kafka transaction: the event records (value = the leaf preimage, metadata in
   headers) and the checkpoint records -> ``commit_transaction()``;
5. commit the index, ``install`` the plan in memory.

A crash between 4 and 5 loses nothing: the next writer catches up from Kafka and finds
those records. A failure before 4 completes leaves nothing visible to ``read_committed``
readers and burns no index. An ambiguous failure (commit timed out) marks the writer
dirty: the next write re-initialises the producer (which completes or aborts the
pending transaction) and catches up before planning, so an index is never re-used.

Readers
-------
A ``KafkaLog`` is a reader until it first appends (or ``acquire()`` is called): opening
one catches the index up from the topics but does not fence the sequencer, so
``auditledger verify DIR`` can run beside ``serve``. ``checkpoint_due`` on a reader signs
nothing: only the sequencer signs. ``refresh()`` catches a reader up again.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import stamina
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import errors as kerr
from kafka.producer.future import FutureRecordMetadata

from ledger.checkpoint import NoteError, open_checkpoint
from ledger.clock import Clock
from ledger.config import Config, ConfigError
from ledger.encoding import b64, unb64
from ledger.log.base import Prepared, StaleLog, StoredCheckpoint, StoredEvent
from ledger.log.sqlite import SQLiteLog
from ledger.merkle import Frontier, leaf_hash
from ledger.sequencer import CheckpointSigner, Plan, Row, Tree, origin

log = logging.getLogger(__name__)

# Topics of DESIGN.md, by short name; ``Config.kafka_topic`` adds prefix and version.
TOPICS = ("events", "intake", "rejected", "checkpoints", "alerts")
READER_REFRESH_SECONDS = 0.2

POSITIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS kafka_positions (
    topic       TEXT    NOT NULL,
    part        INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, part)
);
"""


class Fenced(Exception):
    """Another sequencer with the same transactional id took over; this one MUST stop.

    Nothing this instance tried to write after being fenced is visible to
    ``read_committed`` readers. The instance refuses every further write.
    """


class NotSequencer(Exception):
    """This process does not sequence that events partition now: the sequencer group
    gave it to another ``serve`` (per-partition ledgers, docs/deployment.md). Nothing was
    written for it; the caller routes the events to the intake topic instead."""

    def __init__(self, partition: int) -> None:
        super().__init__(f"this process does not sequence events partition {partition}")
        self.partition = partition


class LogCorrupt(Exception):
    """The topics contradict the local index (a gap, or another leaf at an index)."""


def topic_configs(replicas: int, min_insync: int | None = None) -> dict[str, str]:
    """DESIGN.md's topic settings: keep everything forever, never elect a stale leader,
    and acknowledge a write only when ``min_insync`` replicas have it (default: all but
    one)."""
    return {
        "cleanup.policy": "delete",
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "min.insync.replicas": str(min_insync or max(1, replicas - 1)),
        "unclean.leader.election.enable": "false",
    }


def replication(cfg: Config, brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for the topics the ledger creates on a
    cluster of ``brokers`` live brokers: config.json's values, else ``min(3, brokers)`` and
    one less. ConfigError if the cluster cannot hold them."""
    replicas = cfg.kafka_replication_factor or max(1, min(3, brokers))
    min_insync = cfg.kafka_min_insync_replicas or max(1, replicas - 1)
    if replicas > brokers:
        raise ConfigError(f"kafka_replication_factor {replicas} needs {replicas} live brokers;"
                          f" the cluster at {cfg.kafka_bootstrap} has {brokers}")
    if min_insync > replicas:
        raise ConfigError(f"kafka_min_insync_replicas {min_insync} is more than the"
                          f" replication factor {replicas}: no write could ever succeed")
    return replicas, min_insync


def ensure_topics(cfg: Config, timeout_s: float = 60.0) -> dict[str, int]:
    """Create the ledger's topics if missing; returns partitions per full topic name.

    Replication and min.insync.replicas: see :func:`replication`. Existing topics are left
    as they are (an operator may have raised their partitions or replication on purpose);
    one with fewer replicas than this ledger asks for is logged as a warning.
    """
    admin = _retry(
        lambda: KafkaAdminClient(
            bootstrap_servers=cfg.kafka_bootstrap, client_id="auditledger-admin",
            request_timeout_ms=30_000,
        ),
        timeout_s,
    )
    try:
        brokers = len(admin.describe_cluster()["brokers"])
        names = [cfg.kafka_topic(t) for t in TOPICS]
        existing = set(admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            replicas, min_insync = replication(cfg, brokers)
            with contextlib.suppress(kerr.TopicAlreadyExistsError):
                admin.create_topics(
                    {n: {"num_partitions": max(1, cfg.kafka_partitions),
                         "replication_factor": replicas,
                         "configs": topic_configs(replicas, min_insync)} for n in missing},
                    wait_for_metadata=True)
        out: dict[str, int] = {}
        want = cfg.kafka_replication_factor or max(1, min(3, brokers))
        for desc in admin.describe_topics(names):
            out[desc["name"]] = len(desc["partitions"])
            have = min((len(p["replica_nodes"]) for p in desc["partitions"]), default=0)
            if desc["name"] not in missing and have < want:
                log.warning("topic %s has %d replicas, this ledger asks for %d: raise it with"
                            " kafka-reassign-partitions (docs/deployment.md)",
                            desc["name"], have, want)
        if set(out) != set(names) or not all(out.values()):
            raise ConfigError(f"Kafka topics not all available: {out}")
        return out
    finally:
        admin.close()


def _retry(make: Callable[[], Any], timeout_s: float) -> Any:
    """``make()`` until a broker answers, 0.5 s apart, for up to ``timeout_s`` (a broker
    that is still starting); then its last error is raised. kafka-python 3 reports "no
    broker" as ``KafkaTimeoutError`` ("Unable to bootstrap", after its own ~30 s); 2.x's
    ``NoBrokersAvailable`` is gone."""
    for attempt in stamina.retry_context(on=kerr.KafkaTimeoutError, attempts=None,
                                         timeout=timeout_s, wait_initial=0.5, wait_max=0.5,
                                         wait_jitter=0):
        with attempt:
            return make()
    raise AssertionError("unreachable: stamina re-raises the last failure")


def partition_for(controller: str, partitions: int) -> int:
    """Stable controller -> partition (not Kafka's murmur2): a controller's events MUST
    stay in one partition so their order is the leaf order, across client libraries."""
    digest = hashlib.sha256(controller.encode()).digest()
    return int.from_bytes(digest[:4], "big") % partitions


def _headers(row: Row, received_at: str) -> list[tuple[str, bytes]]:
    ev = row.event
    return [
        ("controller", row.controller.encode()),
        ("index", str(row.index).encode()),
        ("event_id", ev.event_id.encode()),
        ("type", ev.type.encode()),
        ("producer", ev.producer.encode()),
        ("occurred_at", ev.occurred_at.encode()),
        ("received_at", received_at.encode()),
        ("leaf_hash", row.leaf_hash),
        ("canon_hash", ev.canon_hash),
    ]


def checkpoint_value(cp: StoredCheckpoint) -> bytes:
    return orjson.dumps({"controller": cp.controller, "size": cp.size, "root": b64(cp.root),
                         "note": cp.note, "created_at": cp.created_at})


def cosignatures_value(controller: str, size: int, lines: Sequence[str]) -> bytes:
    """A record of the checkpoints topic that adds witness cosignatures to checkpoint
    ``size`` (told from a checkpoint record by its ``cosignatures`` member)."""
    return orjson.dumps({"controller": controller, "size": size, "cosignatures": list(lines)})


def _fast_append_available() -> bool:
    """kafka-python 3.0.x: RecordAccumulator.append(tp, ts, key, value, headers, ...)
    returning (future, batch_is_full, new_batch_created, abort). Anything else: send()."""
    try:
        import inspect

        from kafka.producer.record_accumulator import RecordAccumulator

        params = list(inspect.signature(RecordAccumulator.append).parameters)
        return params[:6] == ["self", "tp", "timestamp_ms", "key", "value", "headers"]
    except Exception:
        return False


_FAST_APPEND = _fast_append_available()


def _warn_without_crc32c() -> None:
    """Without the ``crc32c`` C extension kafka-python checksums every record batch in
    pure Python: ~100 ms per 1000 events, the largest cost of an append (measured)."""
    try:
        from kafka.record import util

        if getattr(util, "crc32c_c", None) is None:
            log.warning("package 'crc32c' missing: Kafka appends are several times slower"
                        " (pip install crc32c)")
    except Exception:
        pass


@dataclass
class KafkaTxn:
    """What one Kafka transaction carries besides the ledger's own event/checkpoint
    records: extra records (e.g. rejections) and consumer offsets (intake)."""

    producer: KafkaProducer
    futures: list[FutureRecordMetadata] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    began: bool = False
    offsets_sent: bool = False
    _known: set[TopicPartition] = field(default_factory=set)

    def _begin(self) -> None:
        if not self.began:
            self.producer.begin_transaction()
            self.began = True

    def send(self, topic: str, value: bytes, key: bytes | None = None,
             headers: list[tuple[str, bytes]] | None = None,
             partition: int | None = None) -> None:
        """Add one record to this transaction: visible only if the transaction commits."""
        self._begin()
        tp = TopicPartition(topic, partition) if partition is not None else None
        if tp is not None and tp in self._known and _FAST_APPEND:
            # kafka-python's send() spends ~80% of its time on per-call checks (metadata,
            # serializers, size estimate) that cannot change within a transaction; the
            # first record of each partition goes through send(), which did them.
            self.producer._transaction_manager.maybe_add_partition_to_transaction(tp)
            fut, full, new_batch, _ = self.producer._accumulator.append(
                tp, int(time.time() * 1000), key, value, headers)
            if full or new_batch:
                self.producer._sender.wakeup()
            self.futures.append(fut)
            return
        self.futures.append(self.producer.send(topic, value=value, key=key, headers=headers,
                                               partition=partition))
        if tp is not None:
            self._known.add(tp)

    def kick(self) -> None:
        """Start sending what is buffered now, without waiting (the commit waits)."""
        acc = getattr(self.producer, "_accumulator", None)
        sender = getattr(self.producer, "_sender", None)
        if self.began and acc is not None and sender is not None:
            acc.begin_flush()
            sender.wakeup()

    def send_offsets(self, offsets: dict[TopicPartition, Any], group_metadata: Any) -> None:
        """Commit a consumer group's offsets atomically with this transaction."""
        self._begin()
        self.producer.send_offsets_to_transaction(offsets, group_metadata)
        self.offsets_sent = True


class KafkaLog(SQLiteLog):
    """The ``Log`` protocol on Kafka. See the module docstring for the write path."""

    def __init__(
        self,
        cfg: Config,
        signer: CheckpointSigner,
        clock: Clock,
        every_events: int = 1000,
        every_seconds: float = 1.0,
        connect_timeout_s: float = 60.0,
    ) -> None:
        if not cfg.kafka_bootstrap:
            raise ConfigError("Kafka ledger without a bootstrap address (--kafka)")
        self.cfg = cfg
        self.topic_events = cfg.kafka_topic("events")
        self.topic_checkpoints = cfg.kafka_topic("checkpoints")
        self.topic_intake = cfg.kafka_topic("intake")
        self.topic_rejected = cfg.kafka_topic("rejected")
        self.topic_alerts = cfg.kafka_topic("alerts")
        _warn_without_crc32c()
        self.partitions = ensure_topics(cfg, connect_timeout_s)
        super().__init__(cfg.kafka_index_db, signer, clock, every_events, every_seconds)
        self._db.executescript(POSITIONS_SCHEMA)
        # The index is derived: after a power loss its lost tail (and the positions saved
        # with it) is read again from Kafka, so it needs no fsync per commit.
        self._db.execute("PRAGMA synchronous=NORMAL")
        # One transactional producer per sequenced slot: ``None`` when one sequencer owns
        # every partition, the partition number on a per-partition ledger.
        self.per_partition = cfg.per_partition
        self._producers: dict[int | None, KafkaProducer] = {}
        self._fenced: dict[int | None, BaseException] = {}
        # Per-partition: False in a ``serve`` of the sequencer group, which writes only
        # the partitions the group assigned it (``assign``); True elsewhere (a CLI write
        # takes the partition it needs, fencing its sequencer as a second one would).
        self.on_demand = True
        self._assigned: set[int] = set()
        #: called (under the log's lock) with a partition whose producer was fenced
        self.on_fenced: Callable[[int], None] | None = None
        self._txn: KafkaTxn | None = None  # open while a transaction() scope runs
        self._txn_slot: int | None = None
        self._refreshed_at = 0.0
        self._consumer = KafkaConsumer(
            bootstrap_servers=cfg.kafka_bootstrap,
            client_id="auditledger-index",
            enable_auto_commit=False,
            isolation_level="read_committed",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            request_timeout_ms=30_000,
        )
        try:
            self.refresh()
        except BaseException:
            self.close()
            raise

    # -- writer role ---------------------------------------------------------------------

    @property
    def is_writer(self) -> bool:
        return bool(self._producers)

    def slot(self, controller: str) -> int | None:
        """The sequencer slot of ``controller``: its events partition on a per-partition
        ledger, None when one sequencer owns them all."""
        if not self.per_partition:
            return None
        return partition_for(controller, self.partitions[self.topic_events])

    def txn_id(self, slot: int | None) -> str:
        """``<prefix>.sequencer`` or, per partition, ``<prefix>.sequencer.<partition>``."""
        return self.cfg.kafka_txn_id if slot is None else self.cfg.kafka_partition_txn_id(slot)

    def sequenced(self) -> list[int]:
        """The events partitions this process sequences now (a live producer each)."""
        with self._lock:
            return sorted(p for p in self._producers if p is not None)

    def may_write(self, slot: int | None) -> bool:
        """Whether an append for ``slot`` would be written here (not a NotSequencer)."""
        return slot is None or self.on_demand or slot in self._assigned

    def sequences_controller(self, controller: str) -> bool:
        """Whether this process signs (and gets cosigned) ``controller``'s checkpoints:
        always with one sequencer; per partition, when it sequences that partition."""
        slot = self.slot(controller)
        return slot is None or (slot in self._producers and self.may_write(slot))

    def acquire(self, partition: int | None = None) -> None:
        """Become the sequencer now (fencing any older one) and catch up."""
        with self.transaction(partition):
            pass

    def assign(self, partitions: Sequence[int]) -> list[int]:
        """The sequencer group gave these partitions to this process: become their
        sequencer (fencing the previous owner, which may still be alive), catch up and
        sign what it left unsigned. Returns the partitions that could not be taken now
        (broker away); their producer is made on the next write or ``retry_assigned``."""
        with self._lock:
            for p in partitions:
                self._assigned.add(p)
                self._fenced.pop(p, None)
                # A producer from an earlier generation may be fenced by now: start over.
                self._close_producer(p)
        return self.retry_assigned(partitions)

    def retry_assigned(self, partitions: Sequence[int] | None = None) -> list[int]:
        """Make the producer of every assigned partition that lacks one."""
        failed: list[int] = []
        with self._lock:
            todo = sorted(self._assigned if partitions is None else partitions)
            for p in todo:
                if p not in self._assigned or p in self._producers:
                    continue
                try:
                    self.acquire(p)
                    self._checkpoints(p, force=True)
                except Exception as exc:
                    log.warning("sequencer of partition %d not ready yet: %r", p, exc)
                    failed.append(p)
        return failed

    def release(self, partitions: Sequence[int]) -> None:
        """The group took these partitions away: stop writing them at once. Called under
        the log's lock, so no transaction of theirs is in flight."""
        with self._lock:
            for p in partitions:
                self._assigned.discard(p)
                self._close_producer(p)

    def _close_producer(self, slot: int | None) -> None:
        producer = self._producers.pop(slot, None)
        if producer is not None:
            with contextlib.suppress(Exception):
                producer.close(timeout=5)

    def _new_producer(self, slot: int | None = None) -> KafkaProducer:
        return KafkaProducer(
            bootstrap_servers=self.cfg.kafka_bootstrap,
            client_id="auditledger-sequencer",
            transactional_id=self.txn_id(slot),
            acks="all",
            enable_idempotence=True,
            linger_ms=1000,  # flush() before commit sends at once; no mid-batch wakeups
            batch_size=1024 * 1024,
            max_request_size=16 * 1024 * 1024,
            max_block_ms=120_000,
            request_timeout_ms=30_000,
            # kafka-python 3.0 does not resend a transaction's AddPartitionsToTxn when
            # its coordinator dies: the batch waits until it expires, then the sequencer
            # aborts and retries. The default 120 s stalls ingest that long when a broker
            # is killed; linger + request timeout + 4 s bounds it (docs/deployment.md).
            delivery_timeout_ms=35_000,
            transaction_timeout_ms=60_000,
        )

    def _ensure_writer(self, slot: int | None = None) -> KafkaProducer:
        """Caller holds the lock, outside any index transaction. On first use: init
        (fencing older sequencers, finishing their transactions) and catch up, committed
        on its own so no later rollback can undo the catch-up."""
        if slot in self._fenced:
            raise Fenced(f"sequencer {self.txn_id(slot)} was fenced: {self._fenced[slot]!r}")
        producer = self._producers.get(slot)
        if producer is None:
            if not self.may_write(slot):
                assert slot is not None
                raise NotSequencer(slot)
            producer = self._new_producer(slot)
            try:
                producer.init_transactions()
            except BaseException:
                producer.close(timeout=5)
                raise
            self._producers[slot] = producer
            try:
                # Everything committed by earlier sequencers is now final: read it all.
                self.refresh()
            except BaseException as exc:
                self._drop_producer(slot, exc)
                raise
        return producer

    def _drop_producer(self, slot: int | None, exc: BaseException) -> None:
        """After a failed transaction: fenced -> stop for good (per partition: until
        the group assigns it again); otherwise re-init later."""
        producer = self._producers.pop(slot, None)
        if producer is None:
            return
        tm = getattr(producer, "_transaction_manager", None)
        fatal = tm.last_error if tm is not None and tm.has_fatal_error() else None
        chain: list[BaseException | None] = [exc, exc.__cause__, exc.__context__, fatal]
        if any(isinstance(e, kerr.ProducerFencedError | kerr.InvalidProducerEpochError |
                          kerr.TransactionCoordinatorFencedError) for e in chain):
            self._fenced[slot] = fatal or exc
            if slot is not None:
                self._assigned.discard(slot)
                log.error("sequencer %s was fenced: another process sequences partition %d",
                          self.txn_id(slot), slot)
                if self.on_fenced is not None:
                    self.on_fenced(slot)
        with contextlib.suppress(Exception):
            producer.close(timeout=5)

    # -- the write path ------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self, partition: int | None = None) -> Iterator[KafkaTxn]:
        """One Kafka transaction + one index transaction around everything appended in the
        block, plus whatever is added with ``KafkaTxn.send`` / ``send_offsets``.

        On a normal exit the Kafka transaction commits, then the index. On an exception
        both roll back, the in-memory trees are reloaded from the index, and the
        exception propagates (``Fenced`` if another sequencer took over).
        MUST NOT be nested; holds the log's lock for the whole block. On a per-partition
        ledger ``partition`` is required: the block may only append events (and sign
        checkpoints) of controllers of that events partition, in its sequencer's
        transaction; elsewhere it is ignored.
        """
        slot = partition if self.per_partition else None
        if self.per_partition and partition is None:
            raise ValueError("a per-partition ledger writes in transaction(partition)")
        with self._lock:
            if self._txn is not None:
                raise RuntimeError("KafkaLog.transaction() does not nest")
            db = self._db
            producer = self._ensure_writer(slot)
            db.execute("BEGIN IMMEDIATE")
            txn: KafkaTxn | None = None
            committing = kafka_committed = False
            try:
                try:
                    self._sync_heads()
                    txn = self._txn = KafkaTxn(producer)
                    self._txn_slot = slot
                    yield txn
                    committing = True
                    if txn.began:
                        producer.flush()
                        for fut in txn.futures:
                            fut.get(timeout=0)  # a failed send aborts the transaction
                        producer.commit_transaction()
                    kafka_committed = True
                except BaseException as exc:
                    clean = True
                    if txn is not None and txn.began:
                        try:
                            producer.abort_transaction()
                        except Exception:
                            clean = False
                    # The caller's own error after a clean abort keeps the producer; any
                    # doubt about Kafka's state drops it, so the next write re-inits
                    # (finishing the pending transaction) and catches up first.
                    if committing or not clean or isinstance(exc, kerr.KafkaError):
                        self._drop_producer(slot, exc)
                    if slot in self._fenced and not isinstance(exc, Fenced):
                        raise Fenced(f"sequencer {self.txn_id(slot)} was fenced") from exc
                    raise
                self._save_positions(txn.futures)
                db.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    db.execute("ROLLBACK")
                if kafka_committed:
                    # In Kafka but not in the index: catch up before any new index.
                    self._drop_producer(slot, exc)
                self._reload_trees()
                raise
            finally:
                self._txn = None
                self._txn_slot = None

    def _reload_trees(self) -> None:
        """Forget planned-but-not-committed state: trees as the index holds them."""
        self.seq.trees.clear()
        self._sync_heads()

    def _transaction(
        self, make_plan: Callable[[], Plan], expect_seq: int | None, received_at: str = ""
    ) -> Plan:
        """SQLiteLog's single write primitive, routed through a Kafka transaction."""
        with self._lock:
            if self._txn is None:
                with self.transaction():
                    return self._transaction(make_plan, expect_seq, received_at)
            txn = self._txn
            if expect_seq is not None and self._last_seq() != expect_seq:
                raise StaleLog(f"log moved past seq {expect_seq}")
            plan = make_plan()
            if self.per_partition:
                for c in {r.controller for r in plan.rows} | {cp.controller
                                                              for cp in plan.checkpoints}:
                    if self.slot(c) != self._txn_slot:
                        raise ValueError(f"controller {c} is not of events partition"
                                         f" {self._txn_slot}: planned in the wrong transaction")
            for row in plan.rows:
                txn.send(self.topic_events, row.event.body, row.controller.encode(),
                         _headers(row, received_at), self._partition(self.topic_events,
                                                                     row.controller))
            for cp in plan.checkpoints:
                txn.send(self.topic_checkpoints, checkpoint_value(cp), cp.controller.encode(),
                         None, self._partition(self.topic_checkpoints, cp.controller))
            txn.kick()  # the records travel while the index rows are written
            # A duplicate event_id fails here; the transaction then aborts, so the records
            # already sent are never visible to read_committed readers.
            self._write(plan, received_at)
            self.seq.install(plan)  # undone by _reload_trees if the transaction fails
            txn.plans.append(plan)
            return plan

    def append(
        self, batch: Sequence[Prepared], received_at: str, expect_seq: int | None = None
    ) -> list[StoredEvent]:
        """Per partition: the batch is split by events partition, each part in the
        transaction of its partition's sequencer (in batch order). Every partition is
        checked first, so a batch with one this process does not sequence writes
        nothing and raises ``NotSequencer``."""
        if not self.per_partition or not batch:
            return super().append(batch, received_at, expect_seq)
        with self._lock:
            if self._txn is not None:
                return super().append(batch, received_at, expect_seq)
            groups: dict[int, list[int]] = {}
            for i, ev in enumerate(batch):
                slot = self.slot(ev.controller)
                assert slot is not None
                groups.setdefault(slot, []).append(i)
            for p in groups:
                if not self.may_write(p) or (p in self._fenced and not self.on_demand):
                    raise NotSequencer(p)
            out: list[StoredEvent | None] = [None] * len(batch)
            for p, positions in groups.items():
                with self.transaction(p):
                    stored = super().append([batch[i] for i in positions], received_at,
                                            expect_seq)
                expect_seq = None  # our own part moved it
                for i, ev in zip(positions, stored, strict=True):
                    out[i] = ev
            return out  # type: ignore[return-value]

    def checkpoint_due(self, force: bool = False) -> list[StoredCheckpoint]:
        """Only the sequencer signs: on a reader (never appended, or fenced) this is a
        no-op, so closing a reader never fences the running sequencer. Per partition,
        each sequenced partition signs its own controllers in its own transaction."""
        with self._lock:
            if not self.is_writer and self._txn is None:
                return []
            if not self.per_partition:
                return self._transaction(lambda: self.seq.plan_due(force), None).checkpoints
            if self._txn is not None:
                slot = self._txn_slot
                return self._transaction(lambda: self.seq.plan_due(
                    force, lambda c: self.slot(c) == slot), None).checkpoints
            out: list[StoredCheckpoint] = []
            for p in self.sequenced():
                if self.may_write(p):
                    out.extend(self._checkpoints(p, force))
            return out

    def _checkpoints(self, partition: int, force: bool) -> list[StoredCheckpoint]:
        def mine(c: str) -> bool:
            return self.slot(c) == partition

        if not any(mine(c) and t.frontier.size > t.cp_size for c, t in self.seq.trees.items()):
            return []
        with self.transaction(partition):
            return self._transaction(lambda: self.seq.plan_due(force, mine), None).checkpoints

    def add_cosignatures(self, controller: str, size: int, lines: Sequence[str]) -> None:
        """On the checkpoints topic (so a rebuilt index has them too), in a transaction
        of their own; only the sequencer (the process that talks to witnesses) writes."""
        with self.transaction(self.slot(controller)) as txn:
            txn.send(self.topic_checkpoints, cosignatures_value(controller, size, lines),
                     controller.encode(), None,
                     self._partition(self.topic_checkpoints, controller))
            self._put_cosignatures(controller, size, lines)

    def _partition(self, topic: str, controller: str) -> int:
        return partition_for(controller, self.partitions[topic])

    def _save_positions(self, futures: Sequence[FutureRecordMetadata]) -> None:
        """The index now holds every ledger record up to these offsets."""
        ends: dict[tuple[str, int], int] = {}
        for fut in futures:
            md = fut.get(timeout=0)
            if md.topic in (self.topic_events, self.topic_checkpoints):
                key = (md.topic, md.partition)
                ends[key] = max(ends.get(key, 0), md.offset + 1)
        self._db.executemany(
            "INSERT INTO kafka_positions VALUES (?,?,?) ON CONFLICT(topic, part) DO UPDATE"
            " SET next_offset=MAX(next_offset, excluded.next_offset)",
            [(t, p, o) for (t, p), o in ends.items()],
        )

    # -- catching the index up from the topics -----------------------------------------

    def refresh(self) -> int:
        """Read what other sequencers committed since we last looked; returns how many
        events were added to the index. Writers never need this (they are the only
        writer); readers call it to see new events."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                self._sync_heads()
                added = self._catch_up()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._reload_trees()
                raise
            self._sync_heads()
            self._refreshed_at = time.monotonic()
            return added

    def last_seq(self) -> int:
        """A reader first catches up (at most every ``READER_REFRESH_SECONDS``), so a
        projection worker or API replica following this log sees new events; the
        sequencer is the only writer and never needs to."""
        with self._lock:
            if ((self.per_partition or not self.is_writer) and self._txn is None
                    and time.monotonic() - self._refreshed_at >= READER_REFRESH_SECONDS):
                self.refresh()
            return self._last_seq()

    def _read_to_end(self, topic: str) -> dict[int, list[Any]]:
        """Every committed record of ``topic`` after the saved position, per partition."""
        consumer = self._consumer
        tps = [TopicPartition(topic, p) for p in range(self.partitions[topic])]
        consumer.assign(tps)
        saved = dict(self._db.execute(
            "SELECT part, next_offset FROM kafka_positions WHERE topic=?", (topic,)))
        for tp in tps:
            consumer.seek(tp, saved.get(tp.partition, 0))
        end = consumer.end_offsets(tps)  # the last stable offset under read_committed
        out: dict[int, list[Any]] = {tp.partition: [] for tp in tps}
        deadline = time.monotonic() + 300
        while any(consumer.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"catching up {topic}: stuck before {end}")
            for tp, records in consumer.poll(timeout_ms=500, max_records=100_000).items():
                out[tp.partition].extend(r for r in records if r.offset < end[tp])
        self._db.executemany(
            "INSERT INTO kafka_positions VALUES (?,?,?) ON CONFLICT(topic, part) DO UPDATE"
            " SET next_offset=MAX(next_offset, excluded.next_offset)",
            [(topic, tp.partition, end[tp]) for tp in tps],
        )
        return out

    def _catch_up(self) -> int:
        """Caller holds the write lock inside BEGIN IMMEDIATE, heads synced. Adds to the
        index every committed event and checkpoint it lacks, rebuilding the Merkle nodes;
        indexes come from the records and MUST continue each tree densely."""
        trees: dict[str, Tree] = {}

        def tree(controller: str) -> Tree:
            if controller not in trees:
                current = self.seq.trees.get(controller)
                trees[controller] = copy.deepcopy(current) if current else Tree(Frontier())
            return trees[controller]

        added = 0
        plan, plan_received = Plan(), ""

        def flush() -> None:
            nonlocal plan
            if plan.rows:
                plan.trees = {c: trees[c] for c in {r.controller for r in plan.rows}}
                self._write(plan, plan_received)
            plan = Plan()

        for records in self._read_to_end(self.topic_events).values():
            for rec in records:
                h = dict(rec.headers)
                controller, index = h["controller"].decode(), int(h["index"])
                leaf = leaf_hash(rec.value)
                if leaf != h["leaf_hash"]:
                    raise LogCorrupt(f"{controller}#{index}: leaf_hash header != value hash")
                t = tree(controller)
                if index < t.frontier.size:
                    have = self._db.execute(
                        "SELECT leaf_hash FROM events WHERE controller=? AND idx=?",
                        (controller, index)).fetchone()
                    if have is None or bytes(have[0]) != leaf:
                        raise LogCorrupt(f"{controller}#{index}: Kafka and index disagree")
                    continue
                if index > t.frontier.size:
                    raise LogCorrupt(f"{controller}: index {index} after {t.frontier.size}")
                received = h["received_at"].decode()
                if received != plan_received:
                    flush()
                    plan_received = received
                ev = Prepared(h["event_id"].decode(), controller, h["type"].decode(),
                              h["producer"].decode(), h["occurred_at"].decode(),
                              rec.value, h["canon_hash"])
                plan.rows.append(Row(controller, index, ev, leaf))
                for level, idx, digest in t.frontier.append(leaf):
                    if level > 0:
                        plan.nodes.append((controller, level, idx, digest))
                added += 1
        flush()
        fresh: list[StoredCheckpoint] = []
        for records in self._read_to_end(self.topic_checkpoints).values():
            for rec in records:
                doc = orjson.loads(rec.value)
                if "cosignatures" in doc:  # follows its checkpoint on the same partition
                    self._put_cosignatures(doc["controller"], doc["size"], doc["cosignatures"])
                    continue
                cp = StoredCheckpoint(doc["controller"], doc["size"], unb64(doc["root"]),
                                      doc["note"], doc["created_at"])
                known = self._db.execute(
                    "SELECT 1 FROM checkpoints WHERE controller=? AND size=?",
                    (cp.controller, cp.size)).fetchone()
                if known is None:
                    self._check_ours(cp)
                    fresh.append(cp)
                    t = tree(cp.controller)
                    t.cp_size = max(t.cp_size, cp.size)
        if fresh or trees:
            self._write(Plan(checkpoints=fresh, trees=trees), "")
        if added:
            log.info("index caught up %d events from %s", added, self.topic_events)
        return added

    def _check_ours(self, cp: StoredCheckpoint) -> None:
        """Topics signed with another log key belong to another ledger (a prefix clash,
        or a data dir pointed at the wrong cluster): refuse them rather than adopt them."""
        try:
            open_checkpoint(cp.note, [self.seq.signer.verifier_key], origin=origin(cp.controller))
        except NoteError as exc:
            raise ConfigError(
                f"topic {self.topic_checkpoints} holds checkpoints not signed by this ledger's"
                f" log key ({exc}): another ledger uses these topics; init with another"
                " AUDITLEDGER_KAFKA_TOPIC_PREFIX"
            ) from None

    def close(self) -> None:
        with self._lock:
            for slot in list(self._producers):
                self._close_producer(slot)
            with contextlib.suppress(Exception):
                self._consumer.close()
            super().close()
