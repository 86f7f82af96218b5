"""The ``/metrics`` page: prometheus_client metrics in one registry per app.

Each app (``create_app``) owns its own ``CollectorRegistry``, so two apps in one process
(the tests build many) never share or double-register a counter. Counters only go up;
rates are Prometheus' job (``rate(auditledger_events_total[1m])``).
``auditledger_ingest_rate`` is a convenience gauge over the last 10 seconds for humans
looking at the raw page.

Values print as prometheus_client prints them (``1.0``, ``-1.0``). Its ``<name>_created``
series (one more gauge per counter series, the Unix time it started) are switched off
for the process: they would double the series of ``auditledger_http_requests_total``
for nothing a scraper of this page needs (a restart shows in
``auditledger_uptime_seconds``).

The gauges that describe the ledger rather than this process (log size, projection lag,
alert queue) are passed to ``render`` by the route, which reads them per scrape.
"""

from __future__ import annotations

import threading
import time
from collections import Counter as CountOf
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

if TYPE_CHECKING:
    from api.admission import Admission

WINDOW_SECONDS = 10.0
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # text/plain; version=0.0.4; charset=utf-8
STATUSES = ("accepted", "duplicate", "rejected")

disable_created_metrics()  # read when a counter is made: before any Metrics()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.events = Counter("auditledger_events",
                              "Events submitted through the HTTP API, by result status.",
                              ["status"], registry=reg)
        for status in STATUSES:  # every status shows, at 0 until it happens
            self.events.labels(status)
        self.rejections = Counter("auditledger_rejections", "Rejected events by rejection code.",
                                  ["code"], registry=reg)
        self.batches = Counter("auditledger_ingest_requests",
                               "POST /v1/events requests that reached ingest.", registry=reg)
        Gauge("auditledger_ingest_rate",
              f"Accepted events per second over the last {WINDOW_SECONDS:.0f} s.",
              registry=reg).set_function(self.ingest_rate)
        self.log_size = Gauge("auditledger_log_size", "Events in each controller's log.",
                              ["controller"], registry=reg)
        self.projection_lag = Gauge(
            "auditledger_projection_lag",
            "Events in the log not yet applied by the projections (-1: no projections).",
            registry=reg)
        self.alert_queue = Gauge("auditledger_alert_queue_length", "Alerts waiting for delivery.",
                                 registry=reg)
        self.witness_failures = Gauge(
            "auditledger_witness_failures",
            "Failed add-checkpoint attempts per witness since the process started.",
            ["witness"], registry=reg)
        self.witness_ok = Gauge("auditledger_witness_ok",
                                "1 if the last attempt to reach the witness succeeded.",
                                ["witness"], registry=reg)
        self.shed = Counter("auditledger_ingest_shed_requests",
                            "POST /v1/events requests refused 503 overloaded (back-pressure).",
                            registry=reg)
        self.requests = Counter("auditledger_http_requests", "HTTP requests by route.",
                                ["route", "method", "status"], registry=reg)
        self.started = time.time()
        Gauge("auditledger_uptime_seconds", "Seconds since the API started.",
              registry=reg).set_function(lambda: time.time() - self.started)
        self._lock = threading.Lock()  # the ingest-rate window
        self._render_lock = threading.Lock()  # gauges set and read by one scrape at a time
        self._recent: deque[tuple[float, int]] = deque()

    def watch_admission(self, admission: Admission) -> None:
        """The back-pressure gauges, read from ``admission`` at each scrape."""
        reg = self.registry
        Gauge("auditledger_ingest_pending_events",
              "Events admitted to ingest and not yet answered.",
              registry=reg).set_function(lambda: admission.pending)
        Gauge("auditledger_ingest_pending_limit",
              "At most this many pending events; past it POST /v1/events answers 503.",
              registry=reg).set_function(lambda: admission.max_pending)
        admission.on_shed = self.shed.inc

    def ingested(self, results: Iterable[dict]) -> None:
        """One ingest request's results. Tallied first, then one increment per label:
        a labelled increment costs about a microsecond, an event 50 times less."""
        now = time.monotonic()
        statuses: CountOf[str] = CountOf()
        codes: CountOf[str] = CountOf()
        for r in results:
            statuses[r["status"]] += 1
            if r["status"] == "rejected":
                codes[r.get("code") or "unknown"] += 1
        self.batches.inc()
        for status, n in statuses.items():
            self.events.labels(status).inc(n)
        for code, n in codes.items():
            self.rejections.labels(code).inc(n)
        with self._lock:
            self._recent.append((now, statuses["accepted"]))
            self._trim(now)

    def request(self, route: str, method: str, status: int) -> None:
        self.requests.labels(route, method, str(status)).inc()

    def _trim(self, now: float) -> None:
        while self._recent and now - self._recent[0][0] > WINDOW_SECONDS:
            self._recent.popleft()

    def ingest_rate(self) -> float:
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            total = sum(n for _, n in self._recent)
        return total / WINDOW_SECONDS

    def render(
        self,
        log_sizes: dict[str, int],
        projection_lag: int | None,
        alert_queue: int = 0,
        witnesses: Iterable[dict] = (),
    ) -> str:
        """The page in the Prometheus text format 0.0.4 (``CONTENT_TYPE``)."""
        with self._render_lock:
            self.log_size.clear()  # a controller that is gone must not linger
            for controller, n in log_sizes.items():
                self.log_size.labels(controller).set(n)
            self.projection_lag.set(-1 if projection_lag is None else projection_lag)
            self.alert_queue.set(alert_queue)
            for w in witnesses:
                self.witness_failures.labels(w["name"]).set(w["failures"])
                self.witness_ok.labels(w["name"]).set(1 if w["ok"] else 0)
            return generate_latest(self.registry).decode()
