"""Producer clients: the same ``submit`` over HTTP or straight into a local data dir.

Both take envelopes that are already signed (``ledger.envelope.complete``) and return one
result dict per envelope, ``{event_id, status, code?, detail?, index?, leaf_hash?}``.

The HTTP client retries transport failures, 5xx and 429 with exponential backoff and
jitter (``stamina``, the project's retry library): resubmitting is safe because ingest is
idempotent on ``event_id``.
What it cannot get past is raised as a ``ClientError`` whose one-line message names the
cause; ``auditledger emit`` prints it and exits with the error's ``exit_code``.

``Producer`` / ``AsyncProducer`` (ledger/producer/, docs/producer-client.md) add a durable
outbox in front: ``from ledger.client import Producer``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import stamina

FIRST_DELAY_S = 0.2
MAX_DELAY_S = 10.0
JITTER_S = 1.0  # up to this much added at random, so producers cut off together spread out


class ClientError(Exception):
    """A batch the server did not take; ``str()`` is one line for a person."""

    exit_code = 1


class Unreachable(ClientError):
    """Nothing answered at the URL (refused, timed out, DNS), after every retry."""


class TimedOut(Unreachable):
    """The server took the connection but did not answer within the timeout, after every
    retry (a hung server or proxy): the client never waits without bound."""


class ServerError(ClientError):
    """The server kept answering 5xx or 429, after every retry."""


class Refused(ClientError):
    """A 4xx that is not per-event results: bad API key, wrong role or URL, body too
    large. Retrying cannot help; it is the caller's input (exit 2, like a bad flag)."""

    exit_code = 2


class _Retryable(Exception):
    def __init__(self, resp: httpx.Response) -> None:
        self.resp = resp


def _reason(resp: httpx.Response) -> str:
    """``401 Unauthorized (unauthorized: missing or unknown API key)``, from the API's
    ``{"code", "detail"}`` error document, or the first line of whatever else came."""
    try:
        doc = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and (doc.get("code") or doc.get("detail")):
        text = ": ".join(str(doc[k]) for k in ("code", "detail") if doc.get(k))
    else:
        text = resp.text.strip()
    text = " ".join(text.split())[:200]
    return f"{resp.status_code} {resp.reason_phrase}" + (f" ({text})" if text else "")


class Client:
    def __init__(self, url: str, api_key: str, retries: int = 8, timeout: float = 60.0) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise ValueError(f"bad URL {url!r}: {exc}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            # httpx would call this a transport error, and it would be retried in vain
            raise ValueError(f"bad URL {url!r}: expected http(s)://HOST[:PORT]")
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
            timeout=timeout,
        )
        self.retries = retries
        self.timeout = timeout

    def _post(self, body: bytes) -> httpx.Response:
        resp = self._http.post("/v1/events", content=body)
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _Retryable(resp)
        return resp

    def submit(self, envelopes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        body = orjson.dumps(list(envelopes))
        tries = f"{self.retries + 1} attempt{'s' if self.retries else ''}"
        try:
            # Before retry n: 0.2 s × 2^(n-1), plus 0-1 s at random, at most 10 s.
            for attempt in stamina.retry_context(
                    on=(httpx.TransportError, _Retryable), attempts=self.retries + 1,
                    timeout=None, wait_initial=FIRST_DELAY_S, wait_max=MAX_DELAY_S,
                    wait_jitter=JITTER_S):
                with attempt:
                    resp = self._post(body)
        except httpx.TimeoutException as exc:
            raise TimedOut(f"no answer from {self.url} within {self.timeout:g} s, after "
                           f"{tries}: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach {self.url} after {tries}: "
                              f"{type(exc).__name__}: {exc}") from None
        except _Retryable as exc:
            raise ServerError(f"server error from {self.url} after {tries}: "
                              f"{_reason(exc.resp)}") from None
        if resp.status_code >= 400 and not resp.content.startswith(b"["):
            raise Refused(f"{self.url} refused the batch: {_reason(resp)}")
        try:
            results = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            results = None
        if not isinstance(results, list):
            raise Refused(f"{self.url} is not an auditledger API: "
                          f"{resp.status_code} answer is not a list of results")
        return results

    def close(self) -> None:
        self._http.close()


class DirectClient:
    """Writes into a local data dir, through the same ingest checks as the API."""

    def __init__(self, data_dir: Path) -> None:
        from ledger.service import Ledger

        self.ledger = Ledger.open(data_dir)

    def submit(self, envelopes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.ledger.submit(list(envelopes))]

    def close(self) -> None:
        self.ledger.close()


#: Re-exported from ledger/producer/ on first use (they import this module's errors).
_PRODUCER_NAMES = {
    "Producer": "producer", "AsyncProducer": "producer", "OutboxFull": "producer",
    "FlushTimeout": "producer", "InclusionError": "producer", "NotDelivered": "producer",
    "EventTooLarge": "producer", "EventIdConflict": "producer",
    "OutboxLocked": "outbox", "HttpDataKeys": "keys",
    "HttpTransport": "transport", "KafkaTransport": "transport",
}


def __getattr__(name: str) -> Any:
    module = _PRODUCER_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'ledger.client' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"ledger.producer.{module}"), name)
