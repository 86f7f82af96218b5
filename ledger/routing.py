"""Writes for partitions another process sequences, routed through the intake topic.

On a per-partition ledger each ``serve`` sequences only the events partitions the
sequencer group gave it (ledger/intake.py). An API request may carry events of any
controller, so ``Ledger.submit`` splits the batch by the controller's partition
(``partition_for``, the stable SHA-256 mapping): the parts this process sequences are
checked and appended here as always; every other part is written to the **intake
topic, partition = that events partition**, where its sequencer handles it exactly once
(same checks, its own transaction). The request then waits for the outcome, read from
Kafka rather than guessed:

- an event record of that partition with the event's ``(controller, event_id)``
  (``read_committed``, from the end offset taken before the write) -> ``accepted``, with
  its leaf index and hash;
- a record of the rejected topic whose ``source`` header is our intake record ->
  ``rejected`` with the sequencer's code and detail;
- neither, once the group's committed intake offset has passed our records (the
  sequencer handled them and wrote nothing: a duplicate) -> ``duplicate``, answered from
  the local index, caught up.

Nothing is acknowledged that is not in the log. If no sequencer answers within
``timeout`` (the partition is moving after a crash), the request fails (the API answers
500) and the producer resubmits, which is idempotent. If the partition comes to this
process while it waits, the rest is appended here (the intake copy then answers
``duplicate`` to its sequencer).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from ledger.encoding import b64
from ledger.ingest import Result
from ledger.log.kafka import KafkaLog, NotSequencer

ROUTE_TIMEOUT_S = 30.0

Item = bytes | dict[str, Any]


class RouteTimeout(Exception):
    """No sequencer handled the routed events in time; nothing is acknowledged."""


def _controller(item: Item) -> Any:
    if isinstance(item, dict):
        return item.get("controller")
    try:
        doc = orjson.loads(item)
    except orjson.JSONDecodeError:
        return None
    return doc.get("controller") if isinstance(doc, dict) else None


def _event_id(item: Item) -> Any:
    doc = item if isinstance(item, dict) else orjson.loads(item)
    return doc.get("event_id") if isinstance(doc, dict) else None


class IntakeRouter:
    """``Ledger.submit`` for a ``serve`` in the sequencer group (or an API replica with
    ``serve --no-sequence``, which sequences nothing and routes everything)."""

    def __init__(self, log: KafkaLog, group_id: str, timeout: float = ROUTE_TIMEOUT_S,
                 lock: Any = None) -> None:
        """``lock``: the ingest lock every caller of ``Ledger.submit`` holds. It is let
        go while routed events wait for their sequencer: that sequencer may be waiting
        for events routed here, and this process's intake worker needs the lock to
        sequence them (two processes routing to each other would otherwise deadlock)."""
        self.log, self.group_id, self.timeout, self.ingest_lock = log, group_id, timeout, lock
        bootstrap = log.cfg.kafka_bootstrap
        self._producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="auditledger-route",
                                       acks="all", enable_idempotence=True, linger_ms=0)
        self._watch = KafkaConsumer(bootstrap_servers=bootstrap, client_id="auditledger-route",
                                    enable_auto_commit=False, isolation_level="read_committed")
        self._admin = KafkaAdminClient(bootstrap_servers=bootstrap,
                                       client_id="auditledger-route")
        self._lock = threading.Lock()
        self.routed = 0

    def submit(self, items: Sequence[Item],
               local: Callable[[Sequence[Item]], list[Result]]) -> list[Result]:
        """One result per item, in order: local parts through ``local`` (the ingestor),
        the others through their sequencer."""
        results: list[Result | None] = [None] * len(items)
        todo = list(range(len(items)))
        for _ in range(5):
            here, away = self._split(items, todo)
            try:
                if here:
                    for i, res in zip(here, local([items[i] for i in here]), strict=True):
                        results[i] = res
            except NotSequencer:
                continue  # the group moved a partition meanwhile: split again
            todo = []
            if away and self.ingest_lock is not None:
                self.ingest_lock.release()
            try:
                for partition, positions in away.items():
                    for i, res in zip(positions, self.forward(partition, [items[i] for i in
                                                                          positions]),
                                      strict=True):
                        if res is None:
                            todo.append(i)  # the partition came here: append it locally
                        else:
                            results[i] = res
            finally:
                if away and self.ingest_lock is not None:
                    self.ingest_lock.acquire()
            if not todo:
                return [r for r in results if r is not None]
        raise RouteTimeout("the events' partitions kept moving; resubmit")

    def _split(self, items: Sequence[Item], todo: list[int]
               ) -> tuple[list[int], dict[int, list[int]]]:
        here: list[int] = []
        away: dict[int, list[int]] = {}
        for i in todo:
            c = _controller(items[i])
            slot = self.log.slot(c) if isinstance(c, str) else None
            if slot is None or self.log.may_write(slot):
                here.append(i)  # no controller: the ingestor rejects it here
            else:
                away.setdefault(slot, []).append(i)
        return here, away

    def forward(self, partition: int, items: Sequence[Item]) -> list[Result | None]:
        """Write ``items`` to intake partition ``partition`` and wait for their outcome
        (None for those left when the partition came to this process)."""
        with self._lock:
            return self._forward(partition, items)

    def _forward(self, partition: int, items: Sequence[Item]) -> list[Result | None]:
        log = self.log
        events = TopicPartition(log.topic_events, partition)
        intake = TopicPartition(log.topic_intake, partition)
        rejected = [TopicPartition(log.topic_rejected, p)
                    for p in range(log.partitions[log.topic_rejected])]
        watch = [events, *rejected]
        self._watch.assign(watch)
        for tp, end in self._watch.end_offsets(watch).items():
            self._watch.seek(tp, end)
        bodies = [it if isinstance(it, bytes) else orjson.dumps(it) for it in items]
        futures = [self._producer.send(log.topic_intake, value=b,
                                       key=str(_controller(it)).encode(), partition=partition)
                   for b, it in zip(bodies, items, strict=True)]
        self._producer.flush()
        offsets = [f.get(timeout=30).offset for f in futures]
        self.routed += len(items)
        by_source = {f"{intake.topic}/{partition}/{o}": i for i, o in enumerate(offsets)}
        by_id: dict[tuple[str, str], list[int]] = {}
        for i, it in enumerate(items):
            eid = _event_id(it)
            if isinstance(eid, str):
                by_id.setdefault((str(_controller(it)), eid), []).append(i)
        out: list[Result | None] = [None] * len(items)
        open_ = set(range(len(items)))
        deadline = time.monotonic() + self.timeout
        while open_:
            self._take(self._watch.poll(timeout_ms=100, max_records=10_000), by_id,
                       by_source, out, open_)
            if not open_:
                break
            if self._handled(intake, max(offsets)):
                # Its transaction is committed: read to the end once more, then judge.
                self._read_to(watch, self._watch.end_offsets(watch), by_id, by_source,
                              out, open_)
                if open_:
                    self._duplicates(items, open_, out)
                break
            if log.may_write(partition):
                return out  # this process sequences it now: the caller appends the rest
            if time.monotonic() > deadline:
                raise RouteTimeout(f"no sequencer of events partition {partition} answered"
                                   f" within {self.timeout:.0f} s; resubmit")
        return out

    def _take(self, polled: dict[TopicPartition, list[Any]],
              by_id: dict[tuple[str, str], list[int]], by_source: dict[str, int],
              out: list[Result | None], open_: set[int]) -> None:
        """Outcomes in what was read: our events appended, or our records rejected."""
        log = self.log
        for tp, recs in polled.items():
            for r in recs:
                h = dict(r.headers or [])
                if tp.topic == log.topic_events:
                    key = (h["controller"].decode(), h["event_id"].decode())
                    for i in by_id.get(key, []):
                        if i in open_:
                            out[i] = Result(key[1], "accepted", index=int(h["index"]),
                                            leaf_hash=b64(h["leaf_hash"]), controller=key[0])
                            open_.discard(i)
                            break
                    continue
                i_ = by_source.get(h.get("source", b"").decode())
                if i_ is not None and i_ in open_:
                    eid = h.get("event_id")
                    out[i_] = Result(eid.decode() if eid else None, "rejected",
                                     code=h.get("code", b"").decode() or None,
                                     detail=h.get("detail", b"").decode() or None)
                    open_.discard(i_)

    def _read_to(self, watch: list[TopicPartition], ends: dict[TopicPartition, int],
                 by_id: dict[tuple[str, str], list[int]], by_source: dict[str, int],
                 out: list[Result | None], open_: set[int]) -> None:
        deadline = time.monotonic() + self.timeout
        while open_ and any(self._watch.position(tp) < ends[tp] for tp in watch):
            if time.monotonic() > deadline:
                raise RouteTimeout("reading the routed events' outcome timed out")
            self._take(self._watch.poll(timeout_ms=100, max_records=10_000), by_id,
                       by_source, out, open_)

    def _handled(self, intake: TopicPartition, last: int) -> bool:
        """Whether the sequencer group committed its intake offset past ``last``."""
        try:
            got = self._admin.list_group_offsets({self.group_id: [intake]})
        except Exception:
            return False
        om = got.get(self.group_id, {}).get(intake)
        return om is not None and om.offset > last

    def _duplicates(self, items: Sequence[Item], open_: set[int],
                    out: list[Result | None]) -> None:
        """Handled without a record: each is already in the log (the stored event)."""
        self.log.refresh()
        for i in sorted(open_):
            c, eid = _controller(items[i]), _event_id(items[i])
            found = self.log.lookup(str(c), [str(eid)]).get(str(eid))
            if found is None:
                raise RouteTimeout(f"event {eid!r} was handled by its sequencer but is"
                                   " neither in the log nor rejected; resubmit")
            out[i] = Result.stored(found, "duplicate")
        open_.clear()

    def close(self) -> None:
        for client in (self._producer, self._watch, self._admin):
            with contextlib.suppress(Exception):  # best effort: the process is ending
                client.close()
