"""The ``auditledger.alerts.v1`` topic (``<prefix>.alerts.v1``): one record per alert,
key = controller (a controller's alerts stay in order in one partition), value = the
alert's canonical JSON, header ``alert_id``.

``acks="all"`` with idempotence: ``deliver`` returns only once every in-sync replica has
the record. After a crash between the ack and the outbox update the record is sent again
with the same id — consumers dedupe on ``alert_id`` (at-least-once, DESIGN.md's topics
are read ``read_committed``; alerts are not transactional, so nothing to abort).
"""

from __future__ import annotations

import threading
from typing import Any

from projections.alerts.sinks import DeliveryError

SEND_TIMEOUT_S = 15.0


class KafkaSink:
    def __init__(self, bootstrap: str, topic: str, client_id: str = "auditledger-alerts") -> None:
        self.bootstrap, self.topic, self.client_id = bootstrap, topic, client_id
        self._producer: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        from kafka import KafkaProducer

        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap, client_id=self.client_id, acks="all",
                    enable_idempotence=True, linger_ms=0, max_block_ms=10_000,
                    request_timeout_ms=10_000, retries=5)
            return self._producer

    def deliver(self, alert: dict[str, Any], body: bytes) -> None:
        try:
            fut = self._get().send(self.topic, key=str(alert["controller"]).encode(),
                                   value=body, headers=[("alert_id", alert["id"].encode())])
            fut.get(timeout=SEND_TIMEOUT_S)
        except Exception as exc:  # kafka-python raises many types; each is one failed try
            raise DeliveryError(f"kafka: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None
