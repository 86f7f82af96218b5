"""Back-pressure for ``POST /v1/events``: a bounded admission queue in front of ingest.

Without a bound, a producer fleet that sends faster than the ledger can check and fsync
makes every request wait behind all the others: the group-commit queue and the thread
pool grow, latency grows without limit, and clients time out on requests that were in
fact stored. With it, the API sheds what it cannot take: a request whose events would
push the events admitted and not yet answered past ``max_pending`` is answered at once
``503 overloaded`` with ``Retry-After``, before its body is parsed or any thread is
taken. What is admitted waits behind at most ``max_pending`` events, so its latency
stays near ``max_pending / throughput`` (docs/api.md, "Back-pressure").

Every count changes on the event loop's thread (admission before the worker thread is
started, release after it answered), so no lock is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson

from api.errors import ApiError

OVERLOADED = "overloaded"


class Admission:
    """Counts the events admitted to ingest and not yet answered, and refuses more."""

    def __init__(self, max_pending: int, retry_after_seconds: float = 1.0) -> None:
        if max_pending < 1:
            raise ValueError("ingest_max_pending_events must be at least 1")
        self.max_pending = max_pending
        self.retry_after = max(1, math.ceil(retry_after_seconds))  # HTTP: whole seconds
        self.pending = 0
        self.shed_requests = 0
        self.on_shed: Callable[[], object] = lambda: None  # the /metrics counter

    def full(self) -> bool:
        """No room left at all: checked before the body is read, so a flood of requests
        costs only their headers while the queue is full."""
        return self.pending >= self.max_pending

    def admit(self, events: int) -> None:
        """Reserve room for ``events`` or raise the 503. A request larger than the bound
        is admitted when nothing else is pending, so every legal batch can get in."""
        if self.pending and self.pending + events > self.max_pending:
            self.shed()
        self.pending += events

    def release(self, events: int) -> None:
        self.pending -= events

    def shed(self) -> None:
        """Count one refused request and raise its answer."""
        self.shed_requests += 1
        self.on_shed()
        raise ApiError(
            503, OVERLOADED,
            f"ingest is at capacity ({self.pending} events waiting, at most "
            f"{self.max_pending}); retry after {self.retry_after} s",
            headers={"Retry-After": str(self.retry_after)},
        )


class ShedWhenFull:
    """Pure ASGI middleware: while the admission queue is full, ``POST /v1/events`` is
    answered 503 here, before routing, authentication and the body: under a flood the
    refusals cost the event loop as little as possible, so they stay fast and leave the
    GIL to the commits. (A request let through may still be refused by ``admit`` once its
    size is known.)"""

    PATH = "/v1/events"

    def __init__(self, app: Any, admission: Admission, route: Any = None) -> None:
        self.app, self.admission, self.route = app, admission, route

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (scope["type"] != "http" or not self.admission.full()
                or scope["path"] != self.PATH or scope["method"] != "POST"):
            await self.app(scope, receive, send)
            return
        try:
            self.admission.shed()
        except ApiError as exc:
            body = orjson.dumps({"code": exc.code, "detail": exc.detail})
            headers = [(b"content-type", b"application/json"),
                       (b"content-length", str(len(body)).encode()),
                       *((k.lower().encode(), v.encode())
                         for k, v in (exc.headers or {}).items())]
            if self.route is not None:
                scope["route"] = self.route  # /metrics counts it under its route
            await send({"type": "http.response.start", "status": exc.status,
                        "headers": headers})
            await send({"type": "http.response.body", "body": body})
