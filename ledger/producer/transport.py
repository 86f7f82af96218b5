"""How the producer's sender delivers a batch from the outbox: HTTP ``POST /v1/events``
or the Kafka intake topic.

A transport sends the stored bytes unchanged (so a resend is byte-identical and the ledger
answers ``duplicate``) and says, per event, what became of it. A failure that may pass (no
answer, a timeout, 5xx, 429, a broker away) is ``Transient``: the batch stays queued and is
tried again after a backoff. A refusal of the whole request (bad API key, wrong role or
URL) is ``Refused``: retrying the same request cannot help, so the events stay queued
(they are not at fault) and the sender keeps the reason for ``metrics()`` and ``flush()``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

import httpx
import orjson

from ledger.client import FIRST_DELAY_S, JITTER_S, MAX_DELAY_S, Refused, _reason
from ledger.producer.outbox import Queued, Settled

INTAKE_TOPIC = "auditledger.intake.v1"


class Transient(Exception):
    """This try failed; the same batch may be sent again. ``retry_after``: what the
    server asked for (``Retry-After``), in seconds, if it did."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before retry ``attempt`` (1, 2, …): the schedule ``ledger.client.Client``
    uses through stamina — 0.2 s doubling to 10 s, plus 0–1 s of jitter so producers cut
    off together spread out — and never sooner than the server's ``Retry-After``.

    The sender computes it itself rather than looping inside ``stamina.retry_context``:
    its wait must end at once on ``close()``, and between tries the batch is in the
    outbox, not in a call stack."""
    delay = min(MAX_DELAY_S, FIRST_DELAY_S * 2 ** max(attempt - 1, 0))
    delay += random.uniform(0, JITTER_S)
    return max(delay, retry_after or 0.0)


class Transport(Protocol):
    def send(self, batch: Sequence[Queued]) -> list[Settled]:
        """Deliver ``batch``; one ``Settled`` per event, or raise ``Transient`` /
        ``Refused`` for the whole batch. MUST send each event's ``body`` unchanged."""
        ...

    def close(self) -> None: ...


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


class HttpTransport:
    """``POST /v1/events`` with the batch as a JSON array of the stored bytes."""

    def __init__(self, url: str, api_key: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout,
            headers={"Authorization": f"Bearer {api_key}",
                     "Content-Type": "application/json"})

    def send(self, batch: Sequence[Queued]) -> list[Settled]:
        body = b"[" + b",".join(q.body for q in batch) + b"]"
        try:
            resp = self._http.post("/v1/events", content=body)
        except httpx.TransportError as exc:
            raise Transient(f"cannot reach {self.url}: {type(exc).__name__}: {exc}") from None
        if resp.status_code >= 500 or resp.status_code == 429:
            raise Transient(f"server error from {self.url}: {_reason(resp)}",
                            _retry_after(resp))
        if resp.status_code != 200 or not resp.content.startswith(b"["):
            raise Refused(f"{self.url} refused the batch: {_reason(resp)}")
        results = orjson.loads(resp.content)
        if not isinstance(results, list) or len(results) != len(batch):
            raise Refused(f"{self.url} answered {len(results)} results for "
                          f"{len(batch)} events")
        out = []
        for q, r in zip(batch, results, strict=True):
            if r.get("status") in ("accepted", "duplicate"):
                out.append(Settled(q.event_id, r["status"], r.get("index"),
                                   r.get("leaf_hash")))
            else:
                out.append(Settled(q.event_id, "rejected", code=r.get("code") or "rejected",
                                   detail=r.get("detail")))
        return out

    def close(self) -> None:
        self._http.close()


class KafkaTransport:
    """Straight to the intake topic (key = controller), ``acks=all`` and idempotence.

    A broker's acknowledgement means the record is durably on the topic; the ledger's
    intake worker then checks and sequences it (ledger/intake.py). Its answer is not sent
    back on this path: a refusal lands on ``auditledger.rejected.v1`` (header
    ``event_id``), and the index comes with the event's first inclusion proof."""

    def __init__(self, bootstrap: str, topic: str = INTAKE_TOPIC,
                 timeout: float = 30.0) -> None:
        from kafka import KafkaProducer

        self.topic = topic
        self.timeout = timeout
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
            client_id="auditledger-producer", max_block_ms=int(timeout * 1000),
            request_timeout_ms=int(timeout * 1000), linger_ms=5)

    def send(self, batch: Sequence[Queued]) -> list[Settled]:
        from kafka.errors import KafkaError

        try:
            futures = [self._producer.send(self.topic, q.body, key=q.controller.encode())
                       for q in batch]
            self._producer.flush(timeout=self.timeout)
            for f in futures:
                f.get(timeout=self.timeout)
        except KafkaError as exc:
            raise Transient(f"Kafka: {type(exc).__name__}: {exc}") from None
        return [Settled(q.event_id, "delivered") for q in batch]

    def close(self) -> None:
        self._producer.close(timeout=10)
