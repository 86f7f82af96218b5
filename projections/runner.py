"""The projection runner: reads the log from the tracked position, applies batches, repeats.

Positions are ``(source, partition, position)``. The SQLite log is one partition,
``("log", 0, seq)``; a Kafka topic will be ``(topic, partition, next offset)`` — one tracked
position per topic-partition, each committed with the batch it ends (the eventsourcing
``Tracking`` row is named ``"<source>/<partition>"``). Kafka keys events by controller,
so every controller's events stay in order within one partition, which is all the
projections need.

Why not the library's ``ProjectionRunner``: it subscribes to an eventsourcing
``Application``'s recorder, and our log of record is the ledger's own (SQLite or Kafka).
This runner keeps the library's contract — the view is a ``TrackingRecorder``, positions
only move forward, ``wait()`` blocks until a position is applied — over our ``Log``.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from eventsourcing.persistence import Tracking

from ledger.clock import SystemClock, format_rfc3339
from ledger.log.base import Log, StoredEvent
from ledger.log.sqlite import SQLiteLog
from projections import prefetch
from projections.batch import row_of
from projections.prefetch import Prefetcher, Row, Rows
from projections.projection import AuditProjection
from projections.shard import ShardProcess
from projections.store import ReadModelStore
from projections.writer import WriterProcess

log = logging.getLogger(__name__)

#: Events per transaction during a catch-up: large batches amortise the per-statement and
#: per-commit costs; each one still commits its rows and its last position together.
BATCH_SIZE = 50_000
#: The ``projection_status`` row a runner records itself in (``ProjectionRunner.report``).
STATUS_NAME = "runner"
#: A following runner records that it is alive at most this often.
HEARTBEAT_SECONDS = 1.0
#: A failed run is retried after a pause that doubles up to this.
MAX_RETRY_SECONDS = 30.0
#: A load builds the indexes it dropped this many batches before the end of the log: the
#: build (half a second per million events) then overlaps the last batches' apply, and
#: costs only their rows' insertion into the built index.
BUILD_AHEAD = 3


@dataclass(frozen=True, slots=True)
class Position:
    """Where a projection stands in one partition of one source."""

    source: str
    partition: int
    position: int

    @property
    def tracking_name(self) -> str:
        return f"{self.source}/{self.partition}"

    def tracking(self) -> Tracking:
        return Tracking(self.tracking_name, self.position)


class EventSource(Protocol):
    """Where events come from: ``LogSource`` (any ``Log``, one partition) or
    ``projections.kafka_source.KafkaSource`` (the events topic, one position per
    partition). ``read_rows`` returns ``(position, type, controller, body)`` rows after
    ``after``, in order, positions strictly increasing within a partition; ``prefetch``
    may return a reader that reads ahead in another process (or None)."""

    source: str

    def partitions(self) -> Sequence[int]: ...

    def read_rows(self, partition: int, after: int, limit: int) -> list[Row]: ...

    def lag(self, partition: int, after: int) -> int: ...

    #: Whether ``prefetch`` can split its chunks between two appliers (``shard_fd``).
    splits: bool

    def prefetch(self, partition: int, after: int, chunk: int,
                 shard_fd: int | None = None) -> Prefetcher | None: ...

    def close(self) -> None: ...


class LogSource:
    """Any ``Log`` (the SQLite log today): one partition, position = ``seq``. The SQLite
    log is read directly (four columns, read-only connection, see ``prefetch``)."""

    source = "log"

    def __init__(self, log: Log) -> None:
        self.log = log
        self._path: str | None = getattr(log, "path", None) if isinstance(log, SQLiteLog) else None
        self._conn = prefetch.connect(self._path) if self._path else None

    def partitions(self) -> Sequence[int]:
        return (0,)

    def read(self, partition: int, after: int, limit: int) -> list[tuple[int, StoredEvent]]:
        return [(e.seq, e) for e in self.log.events(after_seq=after, limit=limit)]

    def read_rows(self, partition: int, after: int, limit: int) -> list[Row]:
        if self._conn is not None:
            return prefetch.read_rows(self._conn, after, limit)
        return [row_of(e) for e in self.log.events(after_seq=after, limit=limit)]

    def lag(self, partition: int, after: int) -> int:
        return self.log.last_seq() - after

    @property
    def splits(self) -> bool:
        return self._path is not None

    def prefetch(self, partition: int, after: int, chunk: int,
                 shard_fd: int | None = None) -> Prefetcher | None:
        return Prefetcher(str(self._path), after, chunk, shard_fd) if self._path else None

    def close(self) -> None:
        """Close this source's own read-only connection (the log is the caller's)."""
        if self._conn is not None:
            self._conn.close()


class ProjectionRunner:
    """Single writer of a read-model store. Two runners on one store stay correct (the
    loser's commit fails on the tracking row and it re-reads), but waste work."""

    def __init__(
        self, source: EventSource, store: ReadModelStore, batch_size: int = BATCH_SIZE
    ) -> None:
        self.source = source
        self.store = store
        self.batch_size = batch_size
        self.projection = AuditProjection(store)
        self._stop = threading.Event()
        empty = all(self.position(p) == 0 for p in source.partitions()) and not store.entities(
            "stats"
        )
        self.projection.batch.authoritative = empty
        #: Commit catch-ups in a writer process (False: always on a thread of this one).
        self.writer_process = True
        #: Split a catch-up's apply with a second applier process (``projections.shard``;
        #: only with the writer process and a source that can split, the SQLite log).
        self.split = True
        # A load into an empty store builds the secondary indexes after the load.
        self._bulk = empty
        # What ``report`` last wrote (the previous worker's last error is kept).
        self._reported = float("-inf")
        self._failing = False
        try:
            self._last_error: dict[str, Any] | None = (
                store.get_status(STATUS_NAME) or {}).get("last_error")
        except Exception:
            self._last_error = None

    def position(self, partition: int = 0) -> int:
        name = Position(self.source.source, partition, 0).tracking_name
        return self.store.max_tracking_id(name) or 0

    def step(self, partition: int = 0) -> int:
        """Apply the next batch of one partition; returns how many events it held."""
        after = self.position(partition)
        rows = self.source.read_rows(partition, after, self.batch_size)
        if not rows:
            return 0
        self.projection.process_rows(
            rows, Position(self.source.source, partition, rows[-1][0]).tracking()
        )
        return len(rows)

    def _chunks(self, partition: int, after: int, far: bool,
                shard: ShardProcess | None = None) -> Iterator[list[Row]]:
        """Row batches after ``after`` until the end of the partition: read ahead by a
        reader process while ``far`` behind (a catch-up), then read here. With ``shard``,
        the reader splits each chunk and these are the runner's shares (``Rows.split``);
        after them, the caches hold only this share's state: they are dropped (``cold``),
        so the rest is applied from the store once the split batches are committed."""
        if far:
            reader = self.source.prefetch(partition, after, self.batch_size,
                                          shard.reader_fd if shard else None)
            if shard is not None:
                shard.started()
            try:
                if reader is not None:
                    with reader:
                        for rows in reader:
                            yield rows
                            after = rows.end
            finally:  # also when the runner stops early (``max_events``)
                if shard is not None:
                    self.projection.batch.discard()
                    self.projection.batch.cold = True
        while rows := self.source.read_rows(partition, after, self.batch_size):
            yield rows
            after = rows[-1][0]

    def run_once(self, max_events: int | None = None) -> int:
        """Catch up with every partition (or stop after ``max_events``); returns the count.

        Pipelined: while batch k commits, batch k+1 is read and applied in memory. A
        catch-up (more than two batches behind in some partition) reads ahead in a reader
        process (``prefetch``), is applied by this runner and a second applier
        (``shard``, the SQLite log only), each its share of every chunk
        (``routing``), and commits in a writer process (``writer``), so the jobs share
        the cores; otherwise batches commit on a helper thread (the database works
        outside the GIL). Commits stay strictly in order, each with its own
        position; the writer process may hold two batches (one committing, one waiting:
        the applier and the writer each have a batch in hand when the other is slower),
        the commit thread one. If a commit fails, nothing after it is committed (the
        writer refuses every later request), the caches are dropped and the error is
        raised — the next run resumes from the stored position.
        The cyclic GC is paused meanwhile: the batch makes millions of small acyclic
        objects, and generation scans would cost more than the projection itself.

        Into an empty store (the first run after a reset) of a store whose
        ``indexes_after_load`` names some (SQLite: ``consents_key``), those indexes are
        dropped first and built once, sorted, by whoever commits, ``BUILD_AHEAD``
        batches before the end of the log as it stood at the start — while the last
        batches are applied — so the build overlaps the projection; the last batches'
        rows then go into the built index. Queries meanwhile are correct but slow.
        """
        total = 0
        pending: deque[Future[None]] = deque()
        built: Future[None] | None = None
        gc_was_enabled = gc.isenabled()
        gc.disable()
        bulk, self._bulk = self._bulk and bool(self.store.indexes_after_load), False
        parts = self.source.partitions()
        starts = {p: self.position(p) for p in parts}
        lags = {p: self.source.lag(p, starts[p]) for p in parts}
        far = {p: lag > 2 * self.batch_size for p, lag in lags.items()}
        # Where the log ends now: a load builds its indexes before its last batch.
        ends = {p: starts[p] + lags[p] for p in parts}
        writer: WriterProcess | None = None
        shard: ShardProcess | None = None
        chunks: dict[int, Iterator[list[Row]]] = {}
        try:
            if bulk:
                self.store.drop_indexes()
            if self.writer_process and any(far.values()):
                if self.split and len(parts) == 1 and self.source.splits:
                    batch = self.projection.batch
                    shard = ShardProcess(self.store, batch.authoritative,
                                         Position(self.source.source, parts[0], 0).tracking_name,
                                         batch.cache_limit)
                writer = WriterProcess(self.store, shard.writer_fd if shard else None)
            chunks = {p: self._chunks(p, starts[p], far[p], shard) for p in parts}
            with ThreadPoolExecutor(1, thread_name_prefix="projection-commit") as pool:
                depth = 2 if writer else 1
                build = (writer.create_indexes if writer
                         else partial(pool.submit, self.store.create_indexes))
                while chunks and not self._stop.is_set():
                    for p, it in list(chunks.items()):
                        rows = next(it, None)
                        if rows is None:
                            del chunks[p]
                            continue
                        if self.projection.batch.cold:
                            # Its caches were dropped: this batch reads the store, which
                            # must first hold every batch applied before it.
                            while pending:
                                self._settle(pending.popleft())
                            self.projection.batch.cold = False
                        writes = self.projection.prepare(rows, getattr(rows, "tally", None))
                        end = rows.end if isinstance(rows, Rows) else rows[-1][0]
                        tracking = Position(self.source.source, p, end).tracking()
                        while len(pending) >= depth:
                            self._settle(pending.popleft())
                        if writer is not None:
                            pending.append(writer.commit(writes, tracking,
                                                         getattr(rows, "split", False)))
                        else:
                            pending.append(pool.submit(self.store.commit, writes, tracking))
                        total += rows.size if isinstance(rows, Rows) else len(rows)
                        if (bulk and built is None and len(parts) == 1
                                and end + BUILD_AHEAD * self.batch_size >= ends[p]):
                            built = build()
                    if max_events is not None and total >= max_events:
                        break
                while pending:
                    self._settle(pending.popleft())
                if built is not None:
                    built.result()
        finally:
            for it in chunks.values():
                it.close()  # stops a reader process left running
            if writer is not None:
                writer.close()
            if shard is not None:  # after the writer: it may still need the last shares
                shard.close()
            if bulk and (built is None or built.exception() is not None):
                self.store.create_indexes()
            if gc_was_enabled:
                gc.enable()
        return total

    def _settle(self, pending: Future[None]) -> None:
        try:
            pending.result()
        except BaseException:
            self.projection.batch.discard()
            raise

    def run_forever(self, poll: float = 0.2) -> None:
        """Follow the log until ``stop()``. A run that fails (a store that cannot be
        written, a source that cannot be read: per-event failures never get here, see
        ``AuditProjection.prepare``) is recorded (``report``) and tried again after a
        pause that doubles up to ``MAX_RETRY_SECONDS``: the worker keeps going, and
        whoever watches it (``/readyz``) sees the error."""
        pause = poll
        while not self._stop.is_set():
            try:
                n = self.run_once()
            except Exception as exc:
                log.exception("projections: run failed, retrying in %.1f s", pause)
                self.report(exc)
                self._stop.wait(pause)
                pause = min(pause * 2, MAX_RETRY_SECONDS)
                continue
            pause = poll
            self.report()
            if n == 0:
                self._stop.wait(poll)

    def report(self, error: BaseException | None = None, force: bool = False) -> None:
        """Record this runner's state beside its positions (``ReadModelStore.put_status``,
        row ``STATUS_NAME``), so another process can tell whether it is alive and
        progressing: ``{"pid", "heartbeat_at", "positions", "failing", "last_error"}``
        (``last_error``: ``{"at", "error", "positions"}`` of the last failed run, kept
        after recovery; ``failing``: whether the last run failed). Written at most every
        ``HEARTBEAT_SECONDS`` unless something failed or changed; a failure to write it is
        logged, never raised (it is about the runner, not part of its work)."""
        now = time.monotonic()
        failing = error is not None
        if not (force or failing or failing != self._failing
                or now - self._reported >= HEARTBEAT_SECONDS):
            return
        try:
            positions = {Position(self.source.source, p, 0).tracking_name: self.position(p)
                         for p in self.source.partitions()}
        except Exception:
            positions = {}
        at = format_rfc3339(SystemClock().now())
        if failing:
            self._last_error = {"at": at, "error": f"{type(error).__name__}: {error}"[:500],
                                "positions": positions}
        doc = {"pid": os.getpid(), "heartbeat_at": at, "positions": positions,
               "failing": failing, "last_error": self._last_error}
        try:
            self.store.put_status(STATUS_NAME, doc)
        except Exception:
            log.exception("projections: could not record the runner's status")
            return
        self._reported, self._failing = now, failing

    def stop(self) -> None:
        self._stop.set()

    def wait(self, position: int, partition: int = 0, timeout: float = 5.0) -> None:
        """Block until ``position`` is applied (read-your-writes for the API)."""
        name = Position(self.source.source, partition, 0).tracking_name
        self.store.wait(name, position, timeout)


def open_source(data_dir: Path, kind: str = "log") -> tuple[EventSource, Log]:
    """The events of a data directory as an event source (and its log, for closing).

    ``kind="log"``: the log of record through the ``Log`` interface (SQLite, or the
    Kafka ledger's local index), one partition. ``kind="kafka"``: the events topic of a
    Kafka ledger read directly, one position per topic-partition."""
    from ledger.config import Config, ConfigError
    from ledger.sequencer import CheckpointSigner
    from ledger.service import open_log
    from ledger.signing import load_private_key

    cfg = Config.load(data_dir)
    if kind not in ("log", "kafka"):
        raise ConfigError(f"unknown event source {kind!r} (log | kafka)")
    if kind == "kafka" and cfg.backend != "kafka":
        raise ConfigError(f"{data_dir} is not a Kafka ledger: no topic to read")
    signer = CheckpointSigner(load_private_key(cfg.log_key_file), cfg.log_key_name)
    log = open_log(cfg, signer, SystemClock())
    if kind == "kafka":
        from projections.kafka_source import KafkaSource

        assert cfg.kafka_bootstrap is not None
        return KafkaSource(cfg.kafka_bootstrap, cfg.kafka_topic("events")), log
    return LogSource(log), log


def rebuild(
    source: EventSource, store: ReadModelStore, batch_size: int = BATCH_SIZE
) -> int:
    """Empty the store and replay everything; returns the number of events applied."""
    store.reset()
    return ProjectionRunner(source, store, batch_size).run_once()


def timed_run(runner: ProjectionRunner) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = runner.run_once()
    return n, time.perf_counter() - t0
