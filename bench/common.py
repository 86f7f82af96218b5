"""Helpers shared by the benchmarks: figures, percentiles, memory, a signed event stream."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.clock import format_rfc3339
from ledger.envelope import complete, pseudonym


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def machine_seconds() -> float:
    """Seconds this machine takes for a fixed piece of pure-Python work (3 million dict
    stores of fresh strings), best of three. Printed beside a benchmark's figures: the 2-core
    VM we measure on runs the same work 0.49 s in its fast phases and up to 0.9 s when its
    host is busy, and every figure moves with it."""
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        d: dict[int, str] = {}
        for i in range(3_000_000):
            d[i & 0xFFFF] = str(i)
        best = min(best, time.perf_counter() - t0)
    return round(best, 3)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(latencies_ms, 50), 3),
        "p99_ms": round(percentile(latencies_ms, 99), 3),
        "mean_ms": round(statistics.fmean(latencies_ms), 3) if latencies_ms else 0.0,
    }


def signed_events(
    n: int, controller: str, producer: str, key: Ed25519PrivateKey, start: datetime | None = None
) -> list[bytes]:
    """``n`` realistic signed envelopes (consents and processing), as raw JSON bytes."""
    start = start or datetime.now(UTC) - timedelta(days=1)
    skey = b"bench-subject-key-0123456789abcd"
    out: list[bytes] = []
    for i in range(n):
        at = format_rfc3339(start + timedelta(milliseconds=i))
        subject = pseudonym(skey, f"user{i % 5000}@example.org")
        partial: dict[str, Any]
        if i % 3:
            partial = {"type": "processing.performed", "controller": controller,
                       "occurred_at": at, "subject": subject,
                       "data": {"activity_id": "newsletter", "basis": "A6-1-a",
                                "data_categories": ["contact"], "purpose": "newsletter"}}
        else:
            partial = {"type": "consent.given", "controller": controller, "occurred_at": at,
                       "subject": subject,
                       "data": {"purposes": ["newsletter"], "method": "web_form",
                                "notice_version": "2024-05"}}
        out.append(orjson.dumps(complete(partial, key, producer)))
    return out
