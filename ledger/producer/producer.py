"""``Producer``: what a business system calls to record an event, and never loses it.

``emit`` builds the envelope (pseudonymises the subject with the controller's subject key,
seals personal details under the subject's data key, signs), writes it to the durable
outbox (ledger/producer/outbox.py) and returns once that write is fsynced: from then on
the event survives the process being killed and the ledger being down. A sender thread
drains the outbox in batches through a transport (ledger/producer/transport.py), retrying
with exponential backoff and jitter; a resend carries the same bytes under the same
``event_id``, which the ledger answers ``duplicate``, so each event is stored exactly once.

``AsyncProducer`` is the same for asyncio code: the fsync and the HTTP calls run in a
worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.canonical import canonical_bytes
from ledger.checkpoint import NoteError, open_checkpoint
from ledger.client import ClientError, Refused, _reason
from ledger.clock import Clock, SystemClock, format_rfc3339
from ledger.codes import MAX_EVENT_BYTES
from ledger.encoding import EncodingError, b64, unb64
from ledger.envelope import complete, new_event_id, pseudonym
from ledger.merkle import ProofError, leaf_hash, verify_consistency, verify_inclusion
from ledger.producer.keys import HttpDataKeys, read_subject_key_file
from ledger.producer.outbox import Outbox
from ledger.producer.transport import (
    INTAKE_TOPIC,
    HttpTransport,
    KafkaTransport,
    Transient,
    Transport,
    backoff,
)
from ledger.sealing import DataKeys, seal_envelope
from ledger.signing import load_private_key

log = logging.getLogger(__name__)

DEFAULT_BATCH = 500
DEFAULT_BATCH_BYTES = 4 * 1024 * 1024  # well under the API's 16 MiB request limit
DEFAULT_MAX_QUEUED = 100_000


class OutboxFull(ClientError):
    """The outbox holds ``max_queued`` events and none left within the wait: the ledger
    has been unreachable for a while. The event was NOT accepted."""


class FlushTimeout(ClientError):
    """``flush()`` ran out of time with events still queued (they stay in the outbox)."""


class EventTooLarge(ClientError, ValueError):
    """An envelope over 64 KiB: the ledger would reject it ``too_large``."""


class EventIdConflict(ClientError, ValueError):
    """An ``event_id`` already queued with other bytes."""


class InclusionError(ClientError):
    """An inclusion proof that does not check out: wrong signature on the checkpoint,
    another log, a proof that gives another root, or a leaf other than what was sent."""


class NotDelivered(ClientError):
    """No receipt for this event (still queued, refused, or never emitted here)."""


class Producer:
    """A producer client with a durable outbox. See docs/producer-client.md.

    Transport: ``url`` + ``api_key`` (HTTP ``POST /v1/events``), or ``kafka`` (bootstrap
    of the ledger's broker; the intake ``topic``), or a ``transport`` object. ``url`` and
    ``api_key`` are also what receipts' proofs and remote data keys use.
    ``outbox``: the SQLite file; ``None`` keeps the queue in memory (no durability).
    ``check_inclusion`` reads proofs with ``reader_api_key`` (an auditor key of the
    controller: a producer key may only write, DESIGN.md) and trusts only ``log_key``.
    """

    def __init__(
        self, *, producer: str, key: Ed25519PrivateKey | Path | str,
        outbox: Path | str | None, controller: str | None = None,
        url: str | None = None, api_key: str | None = None,
        kafka: str | None = None, topic: str = INTAKE_TOPIC,
        transport: Transport | None = None,
        subject_key: bytes | None = None, subject_key_file: Path | str | None = None,
        region: str | None = None, data_keys: DataKeys | None = None,
        log_key: str | None = None, reader_api_key: str | None = None,
        batch_size: int = DEFAULT_BATCH, max_batch_bytes: int = DEFAULT_BATCH_BYTES,
        max_queued: int = DEFAULT_MAX_QUEUED, full_timeout: float = 5.0,
        timeout: float = 30.0, clock: Clock | None = None, start: bool = True,
    ) -> None:
        if not 1 <= batch_size <= 1000:
            raise ValueError("batch_size must be between 1 and 1000")
        if url is not None and not api_key:
            raise ValueError("url needs api_key")
        self.producer = producer
        self._key = key if isinstance(key, Ed25519PrivateKey) else load_private_key(Path(key))
        self.controller = controller
        self.region = region
        self._subject_key = subject_key
        if subject_key_file is not None:
            file_controller, self._subject_key, file_region = read_subject_key_file(
                Path(subject_key_file))
            if controller is not None and controller != file_controller:
                raise ValueError(f"the subject key file is for {file_controller}, "
                                 f"not {controller}")
            self.controller = file_controller
            self.region = region or file_region
        self.url, self.api_key, self.log_key = url, api_key, log_key
        self.reader_api_key = reader_api_key
        self._owns_keys = data_keys is None and url is not None
        self.data_keys = (data_keys if data_keys is not None
                          else HttpDataKeys(url, api_key or "", timeout=timeout) if url
                          else None)
        if transport is None:
            if kafka is not None:
                transport = KafkaTransport(kafka, topic, timeout=timeout)
            elif url is not None:
                transport = HttpTransport(url, api_key or "", timeout=timeout)
            else:
                raise ValueError("give url and api_key, kafka, or a transport")
        self.transport = transport
        self.clock = clock or SystemClock()
        self.batch_size, self.max_batch_bytes = batch_size, max_batch_bytes
        self.max_queued, self.full_timeout = max_queued, full_timeout
        try:
            self.outbox = Outbox(Path(outbox) if outbox is not None else None)
        except BaseException:  # OutboxLocked, a bad path: release what was opened
            transport.close()
            if self._owns_keys and isinstance(self.data_keys, HttpDataKeys):
                self.data_keys.close()
            raise
        self._cv = threading.Condition()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._kick = threading.Event()  # ends a backoff wait: flush() and close() retry now
        self._closed = False
        self.send_errors = 0  # failed tries of a batch, in this process
        self.last_error: str | None = None
        self._http: httpx.Client | None = None
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    # -- building and queueing --------------------------------------------------------

    def build(
        self, type: str, data: Mapping[str, Any], *, subject: str | None = None,
        identifier: str | None = None, sealed: Mapping[str, Any] | None = None,
        controller: str | None = None, occurred_at: str | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """The signed envelope ``emit`` would queue. ``identifier`` (an e-mail address,
        a phone number) is pseudonymised here with the subject key and never leaves this
        process; ``subject`` is a ``psn:`` reference already made. ``sealed``: personal
        details to keep, encrypted under the subject's data key."""
        controller = controller or self.controller
        if not controller:
            raise ValueError("no controller: pass controller= here or to Producer()")
        if identifier is not None:
            if subject is not None:
                raise ValueError("give subject or identifier, not both")
            if self._subject_key is None:
                raise ValueError("pseudonymising needs subject_key or subject_key_file")
            subject = pseudonym(self._subject_key, identifier, self.region)
        env: dict[str, Any] = {"type": type, "controller": controller, "data": dict(data),
                               "event_id": event_id or new_event_id(),
                               "occurred_at": occurred_at or format_rfc3339(self.clock.now())}
        if subject is not None:
            env["subject"] = subject
        if sealed:
            if self.data_keys is None:
                raise ValueError("sealing needs data_keys (or url + api_key)")
            seal_envelope(env, sealed, self.data_keys)
        return complete(env, self._key, self.producer)

    def emit(self, type: str, data: Mapping[str, Any], **fields: Any) -> str:
        """Build, sign and durably queue one event; its ``event_id``. Blocks up to
        ``full_timeout`` while the outbox is full, then raises ``OutboxFull``."""
        env = self.build(type, data, **fields)
        self.emit_envelopes([env])
        return env["event_id"]

    def emit_envelopes(self, envelopes: Iterable[Mapping[str, Any]]) -> list[str]:
        """Queue envelopes, in one fsynced write. One without ``sig`` is completed and
        signed; one with ``sig`` is queued exactly as given. An ``event_id`` already
        queued with the same bytes is not queued twice."""
        rows: list[tuple[str, str, str, bytes, str]] = []
        for e in envelopes:
            env = dict(e) if "sig" in e else complete(e, self._key, self.producer)
            body = canonical_bytes(env)
            if len(body) > MAX_EVENT_BYTES:
                raise EventTooLarge(f"event {env.get('event_id')} is {len(body)} bytes; "
                                    f"the ledger takes at most {MAX_EVENT_BYTES}")
            rows.append((env["event_id"], env["controller"], env["type"], body,
                         b64(leaf_hash(body))))
        ids = [r[0] for r in rows]
        rows = self._new_rows(rows)
        if rows:
            self._enqueue(rows)
        return ids

    def _new_rows(self, rows: list[tuple[str, str, str, bytes, str]]
                  ) -> list[tuple[str, str, str, bytes, str]]:
        out, seen = [], {}
        for r in rows:
            prior = seen.get(r[0]) or self.outbox.queued_body(r[0])
            if prior is None:
                seen[r[0]] = r[3]
                out.append(r)
            elif prior != r[3]:
                raise EventIdConflict(f"event {r[0]} is already queued with other content")
        return out

    def _enqueue(self, rows: list[tuple[str, str, str, bytes, str]]) -> None:
        if self._closed:
            raise RuntimeError("producer is closed")
        deadline = time.monotonic() + self.full_timeout
        with self._cv:
            while self.outbox.queued + len(rows) > self.max_queued:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OutboxFull(
                        f"outbox holds {self.outbox.queued} events (limit "
                        f"{self.max_queued}); the ledger is not taking them"
                        + (f": {self.last_error}" if self.last_error else ""))
                self._cv.wait(left)
            try:
                self.outbox.add(rows)
            except sqlite3.IntegrityError:
                raise EventIdConflict("an event id of this batch is already queued") from None
        self._wake.set()

    # -- sending ----------------------------------------------------------------------

    def start(self) -> Producer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="auditledger-producer",
                                            daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                sent = self._send_once()
            except Exception as exc:  # Transient, Refused, or a bug: the events stay
                attempt += 1
                self._failed(exc)
                retry_after = exc.retry_after if isinstance(exc, Transient) else None
                self._kick.wait(backoff(99) if isinstance(exc, Refused)
                                else backoff(attempt, retry_after))
                self._kick.clear()
                continue
            if sent:
                attempt = 0
            else:
                self._wake.wait(1.0)
                self._wake.clear()

    def _send_once(self) -> bool:
        """Send the head of the outbox and settle it; False when there was nothing."""
        batch = self.outbox.head(self.batch_size, self.max_batch_bytes)
        if not batch:
            return False
        try:
            outcomes = self.transport.send(batch)
        except Exception as exc:
            self.outbox.failed_attempt(batch, str(exc) or type(exc).__name__)
            raise
        self.outbox.settle(batch, outcomes)
        self.last_error = None
        with self._cv:
            self._cv.notify_all()
        return True

    def _failed(self, exc: Exception) -> None:
        self.send_errors += 1
        self.last_error = str(exc) or type(exc).__name__
        if isinstance(exc, Transient | Refused):
            log.warning("producer: %s (%d events stay queued)", self.last_error,
                        self.outbox.queued)
        else:
            log.exception("producer: sending a batch failed; it stays queued")

    def flush(self, timeout: float | None = 60.0) -> None:
        """Wait until the outbox is empty; ``FlushTimeout`` (with the last error) if it
        is not within ``timeout`` seconds. Nothing is lost either way."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wake.set()
        self._kick.set()
        with self._cv:
            while self.outbox.queued:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise FlushTimeout(
                        f"{self.outbox.queued} events still queued after {timeout} s"
                        + (f": {self.last_error}" if self.last_error else ""))
                self._cv.wait(0.2 if left is None else min(left, 0.2))

    def close(self, timeout: float = 30.0) -> int:
        """Flush for up to ``timeout`` seconds, then stop; how many events are still
        queued (they are delivered by the next Producer on this outbox)."""
        if self._closed:
            return 0
        if self._thread is not None:
            try:
                self.flush(timeout)
            except FlushTimeout as exc:
                log.warning("producer closing: %s", exc)
        self._closed = True
        self._stop.set()
        self._wake.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout=max(timeout, 60.0))
        left = self.outbox.queued
        self.transport.close()
        if self._owns_keys and isinstance(self.data_keys, HttpDataKeys):
            self.data_keys.close()
        if self._http is not None:
            self._http.close()
        self.outbox.close()
        return left

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what is waiting, what was delivered ----------------------------------------------

    def pending(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Events still queued, oldest first: ``event_id``, ``controller``, ``type``,
        ``age_s``, ``attempts``, ``last_error``."""
        now = time.time()
        out = []
        for p in self.outbox.pending(limit):
            created = p.pop("created_us")
            out.append({**p, "age_s": round(max(0.0, now - created / 1e6), 3)})
        return out

    def dead_letters(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Events the ledger refused, with its ``code`` and ``detail``; never retried."""
        return self.outbox.dead_letters(limit)

    def metrics(self) -> dict[str, Any]:
        """``queued``, ``sent`` (receipts), ``failed`` (dead letters), ``oldest_age_s``
        (of what is queued; 0 when empty), ``send_errors`` (failed tries in this process)
        and ``last_error`` (None once a batch went through)."""
        oldest = self.outbox.oldest_us()
        return {**self.outbox.counts(),
                "oldest_age_s": 0.0 if oldest is None
                else round(max(0.0, time.time() - oldest / 1e6), 3),
                "send_errors": self.send_errors, "last_error": self.last_error}

    def forget_receipts(self, older_than_s: float) -> int:
        """Drop receipts and dead letters settled more than ``older_than_s`` seconds ago
        (the outbox file otherwise keeps them for ever); how many went. Queued events are
        never touched."""
        return self.outbox.forget(int((time.time() - older_than_s) * 1e6))

    def receipt(self, event_id: str) -> dict[str, Any] | None:
        """``{"event_id", "status", "index", "leaf_hash", "local_leaf_hash", …}`` once
        delivered; ``{"status": "queued"}`` or ``{"status": "rejected", "code", …}``
        before or instead; None for an event this outbox never held."""
        rec = self.outbox.receipt(event_id)
        if rec is not None:
            return rec
        if self.outbox.is_queued(event_id):
            return {"event_id": event_id, "status": "queued"}
        dead = self.outbox.dead_letter(event_id)
        return None if dead is None else {**dead, "status": "rejected"}

    def check_inclusion(self, event_id: str) -> dict[str, Any]:
        """Fetch the event's inclusion proof and check it here, against a checkpoint
        signed by the pinned ``log_key``, for the leaf hash of the bytes this producer
        sent, and that the checkpoint is consistent with the largest one checked before
        (kept in the outbox). Returns ``{"event_id", "index", "tree_size", "root"}``;
        raises ``InclusionError`` when anything does not check out."""
        if self.url is None or self.log_key is None or self.reader_api_key is None:
            raise ValueError("check_inclusion needs url, reader_api_key and the pinned "
                             "log_key")
        rec = self.outbox.receipt(event_id)
        if rec is None:
            raise NotDelivered(f"event {event_id} has no receipt (still queued, refused, "
                               "or not emitted through this outbox)")
        if self._http is None:
            self._http = httpx.Client(base_url=self.url.rstrip("/"), timeout=30.0,
                                      headers={"Authorization": f"Bearer {self.reader_api_key}"})
        c = rec["controller"]
        resp = self._http.get(f"/v1/controllers/{c}/proofs/inclusion/{event_id}")
        if resp.status_code != 200:
            raise Refused(f"no inclusion proof for {event_id}: {_reason(resp)}")
        doc = orjson.loads(resp.content)
        try:
            cp = open_checkpoint(doc["checkpoint"], [self.log_key], origin=f"auditledger/{c}")
            if doc["tree_size"] != cp.size:
                raise InclusionError(f"proof is for size {doc['tree_size']}, the checkpoint "
                                     f"for {cp.size}")
            if doc["leaf_hash"] != rec["local_leaf_hash"]:
                raise InclusionError(f"the ledger's leaf for {event_id} is not the hash of "
                                     "the bytes this producer sent")
            if rec["index"] is not None and rec["index"] != doc["index"]:
                raise InclusionError(f"proof puts {event_id} at index {doc['index']}; the "
                                     f"receipt said {rec['index']}")
            verify_inclusion(unb64(doc["leaf_hash"], 32), doc["index"], cp.size,
                             [unb64(h, 32) for h in doc["proof"]], cp.root)
            self._check_consistent(c, cp.size, cp.root)
        except (NoteError, ProofError, EncodingError, KeyError, TypeError) as exc:
            raise InclusionError(f"inclusion proof of {event_id} fails: {exc}") from None
        if rec["index"] is None:
            self.outbox.record_index(event_id, doc["index"], doc["leaf_hash"])
        return {"event_id": event_id, "index": doc["index"], "tree_size": cp.size,
                "root": b64(cp.root)}


    def _check_consistent(self, controller: str, size: int, root: bytes) -> None:
        """The checkpoint just verified and the largest one verified before must be one
        log: a consistency proof from the smaller to the larger, checked here
        (``ledger.merkle.verify_consistency``). The larger is kept."""
        known = self.outbox.checkpoint(controller)
        if known is not None:
            old_size, old_root = known[0], unb64(known[1], 32)
            (a, ra), (b, rb) = sorted(((old_size, old_root), (size, root)),
                                      key=lambda x: x[0])
            proof: list[bytes] = []
            if 0 < a < b:
                assert self._http is not None
                resp = self._http.get(f"/v1/controllers/{controller}/proofs/consistency",
                                      params={"from": a, "to": b})
                if resp.status_code != 200:
                    raise InclusionError(f"no consistency proof {a} -> {b}: {_reason(resp)}")
                proof = [unb64(h, 32) for h in orjson.loads(resp.content)["proof"]]
            try:
                verify_consistency(a, b, ra, rb, proof)
            except ProofError as exc:
                raise InclusionError(
                    f"checkpoint of size {size} is not consistent with the one of size "
                    f"{old_size} verified before (a fork?): {exc}") from None
            if size <= old_size:
                return
        self.outbox.keep_checkpoint(controller, size, b64(root))


class AsyncProducer:
    """``Producer`` for asyncio: the same outbox and sender thread; every blocking call
    (the outbox fsync, the back-pressure wait, HTTP) runs in a worker thread."""

    def __init__(self, **kwargs: Any) -> None:
        self.sync = Producer(**kwargs)

    async def emit(self, type: str, data: Mapping[str, Any], **fields: Any) -> str:
        return await asyncio.to_thread(self.sync.emit, type, data, **fields)

    async def emit_envelopes(self, envelopes: Iterable[Mapping[str, Any]]) -> list[str]:
        return await asyncio.to_thread(self.sync.emit_envelopes, list(envelopes))

    async def flush(self, timeout: float | None = 60.0) -> None:
        await asyncio.to_thread(self.sync.flush, timeout)

    async def close(self, timeout: float = 30.0) -> int:
        return await asyncio.to_thread(self.sync.close, timeout)

    async def check_inclusion(self, event_id: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.sync.check_inclusion, event_id)

    def forget_receipts(self, older_than_s: float) -> int:
        """Drop receipts and dead letters settled more than ``older_than_s`` seconds ago
        (the outbox file otherwise keeps them for ever); how many went. Queued events are
        never touched."""
        return self.outbox.forget(int((time.time() - older_than_s) * 1e6))

    def receipt(self, event_id: str) -> dict[str, Any] | None:
        return self.sync.receipt(event_id)

    def pending(self, limit: int = 1000) -> list[dict[str, Any]]:
        return self.sync.pending(limit)

    def metrics(self) -> dict[str, Any]:
        return self.sync.metrics()

    async def __aenter__(self) -> AsyncProducer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
