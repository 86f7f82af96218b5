"""Where alerts go. One seam, ``AlertSink``: ``deliver`` returns when the receiver has the
alert and raises ``DeliveryError`` otherwise; the ``Deliverer`` owns retries."""

from __future__ import annotations

from typing import Any, Protocol

import orjson


class DeliveryError(Exception):
    """One failed attempt (the receiver is down, answered non-2xx, or timed out).
    ``permanent`` failures are dead-lettered at once instead of retried."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class AlertSink(Protocol):
    """MUST return only once the receiver acknowledged the alert (a 2xx, a Kafka ack
    from all in-sync replicas); MUST raise ``DeliveryError`` otherwise. MAY be called
    again with the same alert after a crash: receivers dedupe by ``alert["id"]``."""

    def deliver(self, alert: dict[str, Any], body: bytes) -> None: ...

    def close(self) -> None: ...


def alert_body(alert: dict[str, Any]) -> bytes:
    """The bytes every sink sends: canonical JSON (sorted keys) of the emitted alert,
    without the outbox's own bookkeeping — identical on every retry."""
    doc = {k: v for k, v in alert.items() if k not in ("state", "deliveries")}
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
