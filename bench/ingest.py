"""Ingest benchmark: signed events per second through every check and a durable append.

Measured path = what ``POST /v1/events`` does minus HTTP: parse, size, schema, registry,
Ed25519 signature (split across processes), clock skew, idempotency lookup, Merkle
hashing, checkpoints, and a committed (fsynced) SQLite transaction per batch. Signing the
events is the producers' work and happens before the clock starts.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import peak_rss_mib, signed_events, summary
from ledger.service import Ledger, init_data_dir
from ledger.signing import generate_key, public_key_text

CONTROLLER = "NO-921119224"


def _prepare(data_dir: Path, kafka: str | None, workers: int | None) -> tuple[Ledger, Any]:
    cfg, _ = init_data_dir(data_dir, kafka)
    ledger = Ledger(cfg, verifier_workers=workers)
    ledger.register_controller(CONTROLLER, {"name": "Bench AS", "country": "NO",
                                            "timezone": "Europe/Oslo"})
    key = generate_key()
    ledger.register_producer(CONTROLLER, "bench", public_key_text(key), ["*"])
    return ledger, key


def run(events: int = 100_000, backend: str = "sqlite", batch: int = 1000,
        workers: int | None = None, kafka: str | None = None,
        sequencers: int = 1) -> dict[str, Any]:
    if backend not in ("sqlite", "kafka"):
        raise ValueError("--backend must be sqlite or kafka")
    if sequencers > 1 and backend != "kafka":
        raise ValueError("--sequencers > 1 needs --backend kafka")
    if backend == "kafka":
        from bench.kafka_ingest import run_kafka, run_sequencers

        if sequencers > 1:
            return run_sequencers(sequencers, events=events, batch=batch, workers=workers,
                                  kafka=kafka)

        return run_kafka(events=events, batch=batch, workers=workers, kafka=kafka)
    tmp = Path(tempfile.mkdtemp(prefix="auditledger-bench-"))
    try:
        ledger, key = _prepare(tmp / "ledger", None, workers)
        return measure(ledger, key, events, batch, backend)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(ledger: Ledger, key: Any, events: int, batch: int, backend: str) -> dict[str, Any]:
    t_gen = time.perf_counter()
    stream = signed_events(events, CONTROLLER, "bench", key)
    gen_s = time.perf_counter() - t_gen
    ledger.submit(stream[:batch])  # warm the worker pool; not counted
    stream = stream[batch:]
    latencies: list[float] = []
    accepted = 0
    t0 = time.perf_counter()
    for i in range(0, len(stream), batch):
        chunk = stream[i : i + batch]
        s = time.perf_counter()
        results = ledger.submit(chunk)
        latencies.append((time.perf_counter() - s) * 1000)
        accepted += sum(r.status == "accepted" for r in results)
    elapsed = time.perf_counter() - t0
    ledger.close()
    if accepted != len(stream):
        raise RuntimeError(f"only {accepted} of {len(stream)} accepted")
    rate = accepted / elapsed
    lat = summary(latencies)
    result = {
        "backend": backend, "events": accepted, "batch": batch,
        "verifier_workers": ledger.verifier.workers, "seconds": round(elapsed, 3),
        "events_per_s": round(rate), "batch_append_latency": lat,
        "peak_rss_mib": round(peak_rss_mib(), 1), "signing_s": round(gen_s, 2),
    }
    result["text"] = (
        f"{backend}: {accepted} signed events in {elapsed:.2f} s = {rate:,.0f} events/s "
        f"(batches of {batch}, {ledger.verifier.workers} verifier worker process(es) + main)\n"
        f"append latency per batch: p50 {lat['p50_ms']} ms, p99 {lat['p99_ms']} ms; "
        f"peak RSS {result['peak_rss_mib']} MiB"
    )
    return result
