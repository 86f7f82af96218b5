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
