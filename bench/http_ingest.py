"""HTTP ingest benchmark: ``POST /v1/events`` with batches of 100 against ``auditledger
serve`` (uvicorn, one process), load from this (second) process.

``python -m bench.http_ingest [--events 50000] [--batch 100] [--concurrency 8]``.
Events are signed before the clock starts (the producers' work). Measured: every event
accepted, end to end over HTTP, durably appended (fsync per commit; concurrent requests are
group-committed). Target ≥ 5,000/s. By default the server runs without projections
(``serve --no-projections``: the ingest path alone); ``--projections`` adds the read side
and alerts competing for the same cores.
"""

from __future__ import annotations

import argparse
import queue
import shutil
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import percentile, signed_events, summary
from bench.http_common import CONTROLLER, Server, prepare, tree_cpu


def run(events: int = 50_000, batch: int = 100, concurrency: int = 8,
        projections: bool = False) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="auditledger-bench-http-"))
    try:
        prep = prepare(tmp / "ledger")
        t_sign = time.perf_counter()
        stream = signed_events(events, CONTROLLER, "bench", prep.key,
                               datetime.now(UTC) - timedelta(hours=1))
        bodies = [b"[" + b",".join(stream[i : i + batch]) + b"]"
                  for i in range(0, len(stream), batch)]
        sign_s = time.perf_counter() - t_sign
        server = Server(prep.data_dir, projections=projections)
        try:
            res = _load(server.url, prep.producer_token, bodies, events, batch, concurrency,
                        sign_s, server.proc.pid, projections)
            res["projections"] = projections
            res["text"] += " [projections " + ("on" if projections else "off") + "]"
            return res
        finally:
            server.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _load(url: str, token: str, bodies: list[bytes], events: int, batch: int,
          concurrency: int, sign_s: float, pid: int, projections: bool) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    work: queue.Queue[bytes] = queue.Queue()
    for b in bodies[1:]:
        work.put(b)
    latencies: list[float] = []
    accepted = [0]
    lock = threading.Lock()
    errors: list[str] = []

    with httpx.Client(base_url=url, headers=headers, timeout=60) as warm:
        first = warm.post("/v1/events", content=bodies[0]).json()  # warm-up, not counted
    warm_n = sum(r["status"] == "accepted" for r in first)

    def worker() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            while True:
                try:
                    body = work.get_nowait()
                except queue.Empty:
                    return
                s = time.perf_counter()
                r = client.post("/v1/events", content=body)
                ms = (time.perf_counter() - s) * 1000
                if r.status_code != 200:
                    errors.append(r.text[:200])
                    continue
                n = sum(x["status"] == "accepted" for x in orjson.loads(r.content))
                with lock:
                    latencies.append(ms)
                    accepted[0] += n

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    sampler = LagSampler(url, projections)
    cpu0 = tree_cpu(pid)
    t0 = time.perf_counter()
    sampler.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    lag = sampler.stop(events)
    cpu1 = tree_cpu(pid)
    total = accepted[0]
    if errors or total + warm_n != events:
        raise RuntimeError(f"{total + warm_n}/{events} accepted; errors: {errors[:3]}")
    rate = total / elapsed
    lat = summary(latencies)
    result = {"events": total, "batch": batch, "concurrency": concurrency,
              "seconds": round(elapsed, 3), "events_per_s": round(rate),
              "request_latency": lat, "signing_s": round(sign_s, 2)}
    # CPU per event, by process, over the timed run and the projections' catch-up after
    # it: the figure to compare on a machine shared with other jobs.
    cpu = {k: round((v - cpu0.get(k, 0.0)) * 1e6 / total, 1) for k, v in cpu1.items()}
    result["cpu_us_per_event"] = cpu
    result["cpu_us_per_event_total"] = round(sum(cpu.values()), 1)
    result["projection_lag"] = lag
    lag_text = (f"; projection lag p50 {lag['p50_s']} s, p99 {lag['p99_s']} s, "
                f"caught up {lag['caught_up_s']} s after the last response") if lag else ""
    result["text"] = (f"HTTP ingest: {total} events in {elapsed:.2f} s = {rate:,.0f} events/s "
                      f"(batches of {batch}, {concurrency} client threads); request p50 "
                      f"{lat['p50_ms']} ms, p99 {lat['p99_ms']} ms{lag_text}; CPU µs/event "
                      f"{result['cpu_us_per_event_total']} "
                      + " ".join(f"{k}={v}" for k, v in sorted(cpu.items())))
    return result


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name):  # the one series, or the first controller's
            return float(line.rsplit(" ", 1)[1])
    return None


class LagSampler:
    """Projection lag in seconds, from ``/metrics`` every 100 ms: at time t the
    projections have applied ``log_size - lag`` events; their lag is t minus the moment
    the log first held that many (from the same samples)."""

    def __init__(self, url: str, enabled: bool) -> None:
        self.url, self.enabled = url, enabled
        self.samples: list[tuple[float, float, float]] = []  # (t, log size, lag)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        if self.enabled:
            self._thread.start()

    def _sample(self, http: httpx.Client) -> tuple[float, float, float] | None:
        text = http.get("/metrics").text
        size = _metric(text, "auditledger_log_size{")
        lag = _metric(text, "auditledger_projection_lag ")
        if size is None or lag is None or lag < 0:
            return None
        return (time.perf_counter(), size, lag)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self._stop.wait(0.1):
                s = self._sample(http)
                if s is not None:
                    self.samples.append(s)

    def stop(self, events: int, timeout: float = 120) -> dict[str, float] | None:
        """Stop after the projections caught up with the log (or ``timeout``)."""
        if not self.enabled:
            return None
        end = time.perf_counter()
        while time.perf_counter() - end < timeout:
            if self.samples and self.samples[-1][2] == 0 and self.samples[-1][0] > end:
                break
            time.sleep(0.1)
        self._stop.set()
        self._thread.join()
        lags = []
        for t, size, lag in self.samples:
            applied = size - lag
            first = next(u for u, sz, _ in self.samples if sz >= applied)
            lags.append(t - first)
        caught = next((t for t, _, lag in self.samples if t > end and lag == 0), None)
        return {"p50_s": round(percentile(lags, 50), 3), "p99_s": round(percentile(lags, 99), 3),
                "caught_up_s": round(caught - end, 2) if caught else None,
                "samples": len(lags)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--projections", action="store_true",
                   help="Serve with the projections (and alerts) running beside the API.")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    res = run(args.events, args.batch, args.concurrency, args.projections)
    print(orjson.dumps(res).decode() if args.json else res["text"])


if __name__ == "__main__":
    main()
