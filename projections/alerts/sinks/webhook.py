"""Webhook delivery: an HTTPS/HTTP POST of the alert, signed with the webhook's secret.

Signature (Stripe-style, so receivers can reuse what they know)::

    X-Auditledger-Timestamp: <unix seconds>
    X-Auditledger-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
    X-Auditledger-Alert-Id:  <alert id>   (dedupe on this — or on the body's "id")

The timestamp is signed so a receiver can refuse replays older than a few minutes; it is
the time of the attempt, so a retry has a fresh timestamp and signature over the same
body. ``verify_signature`` is what a Python receiver calls.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

import httpx

from projections.alerts.sinks import DeliveryError

SIGNATURE_HEADER = "X-Auditledger-Signature"
TIMESTAMP_HEADER = "X-Auditledger-Timestamp"
ID_HEADER = "X-Auditledger-Alert-Id"
TIMEOUT_S = 5.0


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str,
                     tolerance_s: float | None = 300, now: float | None = None) -> bool:
    """True when ``signature`` is ours over ``timestamp.body`` and, with a tolerance, the
    timestamp is recent. Constant-time comparison."""
    if tolerance_s is not None:
        try:
            age = abs((now if now is not None else time.time()) - int(timestamp))
        except ValueError:
            return False
        if age > tolerance_s:
            return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookSink:
    """POSTs to one registered URL. 2xx = delivered; anything else (connection refused,
    timeout, 5xx, 4xx) is a failed attempt the ``Deliverer`` retries: a receiver that
    answers 4xx while being redeployed must not lose alerts. Only a 410 Gone is
    permanent."""

    def __init__(self, url: str, secret: str, client: httpx.Client | None = None,
                 timeout_s: float = TIMEOUT_S) -> None:
        self.url, self.secret = url, secret
        self._client = client or httpx.Client(timeout=timeout_s, follow_redirects=False)
        self._own = client is None

    def deliver(self, alert: dict[str, Any], body: bytes) -> None:
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: ts,
                   SIGNATURE_HEADER: sign(self.secret, ts, body), ID_HEADER: alert["id"],
                   "User-Agent": "auditledger-alerts/1"}
        try:
            req = self._client.build_request("POST", self.url, content=body, headers=headers)
        except Exception:  # a URL httpx cannot send (bad IDNA host, …): no retry can help
            raise DeliveryError("invalid URL", permanent=True) from None
        try:
            r = self._client.send(req)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None
        if not 200 <= r.status_code < 300:
            raise DeliveryError(f"HTTP {r.status_code}", permanent=r.status_code == 410)

    def close(self) -> None:
        if self._own:
            self._client.close()
