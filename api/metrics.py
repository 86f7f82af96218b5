"""Counters for ``/metrics`` in the Prometheus text format (no client library needed).

Counters only go up; rates are Prometheus' job (``rate(auditledger_events_total[1m])``).
``auditledger_ingest_rate`` is a convenience gauge over the last 10 seconds for humans
looking at the raw page.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Iterable

WINDOW_SECONDS = 10.0


def _labels(pairs: dict[str, str]) -> str:
    if not pairs:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(pairs.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: Counter[str] = Counter()  # by status
        self.rejections: Counter[str] = Counter()  # by code
        self.requests: Counter[tuple[str, str, int]] = Counter()  # route, method, status
        self.batches = 0
        self._recent: deque[tuple[float, int]] = deque()
        self.started = time.time()

    def ingested(self, results: Iterable[dict]) -> None:
        now = time.monotonic()
        accepted = 0
        with self._lock:
            self.batches += 1
            for r in results:
                self.events[r["status"]] += 1
                if r["status"] == "rejected":
                    self.rejections[r.get("code") or "unknown"] += 1
                elif r["status"] == "accepted":
                    accepted += 1
            self._recent.append((now, accepted))
            self._trim(now)

    def request(self, route: str, method: str, status: int) -> None:
        with self._lock:
            self.requests[(route, method, status)] += 1

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
    ) -> str:
        out: list[str] = []

        def metric(name: str, kind: str, help_: str,
                   samples: Iterable[tuple[dict[str, str], float]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                out.append(f"{name}{_labels(labels)} {_num(value)}")

        with self._lock:
            events = dict(self.events)
            rejections = dict(self.rejections)
            requests = dict(self.requests)
            batches = self.batches
        metric("auditledger_events_total", "counter",
               "Events submitted through the HTTP API, by result status.",
               [({"status": s}, events.get(s, 0)) for s in ("accepted", "duplicate", "rejected")])
        metric("auditledger_rejections_total", "counter",
               "Rejected events by rejection code.",
               [({"code": c}, n) for c, n in sorted(rejections.items())])
        metric("auditledger_ingest_requests_total", "counter",
               "POST /v1/events requests that reached ingest.", [({}, batches)])
        metric("auditledger_ingest_rate", "gauge",
               f"Accepted events per second over the last {WINDOW_SECONDS:.0f} s.",
               [({}, self.ingest_rate())])
        metric("auditledger_log_size", "gauge", "Events in each controller's log.",
               [({"controller": c}, n) for c, n in sorted(log_sizes.items())])
        metric("auditledger_projection_lag", "gauge",
               "Events in the log not yet applied by the projections (-1: no projections).",
               [({}, -1 if projection_lag is None else projection_lag)])
        metric("auditledger_alert_queue_length", "gauge",
               "Alerts waiting for delivery.", [({}, alert_queue)])
        metric("auditledger_http_requests_total", "counter", "HTTP requests by route.",
               [({"route": r, "method": m, "status": str(s)}, n)
                for (r, m, s), n in sorted(requests.items())])
        metric("auditledger_uptime_seconds", "gauge", "Seconds since the API started.",
               [({}, time.time() - self.started)])
        return "\n".join(out) + "\n"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"
