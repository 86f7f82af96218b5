"""Helpers shared by the benchmarks: figures, percentiles, memory, a signed event stream."""

from __future__ import annotations

import resource
import statistics
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
