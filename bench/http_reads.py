"""Auditor reads under load: p50/p99 latency of the read API with N events stored.

``python -m bench.http_reads [--events 1000000] [--data DIR] [--seconds 20]
[--concurrency 4] [--projections]``. A ledger of one controller with ``--events`` events
is prepared once (kept in ``--data`` for reruns: signing and ingesting a million events
takes minutes), ``auditledger serve`` runs in its own process, and this process reads
with ``--concurrency`` threads for ``--seconds``: event pages at random cursors, inclusion
proofs of random events, consistency proofs, the checkpoint and the controller (and, with
``--projections``, the read models after they caught up). Target: p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import percentile, signed_events
from bench.http_common import CONTROLLER, Server, prepare
from ledger.config import Config
from ledger.service import Ledger
from ledger.signing import load_private_key, save_private_key

CHUNK = 20_000


def _sign(args: tuple[str, int, int, str]) -> list[bytes]:
    key_file, offset, n, start = args
    key = load_private_key(Path(key_file))
    at = datetime.fromisoformat(start) + timedelta(milliseconds=offset)
    return signed_events(n, CONTROLLER, "bench", key, at)


def load(data_dir: Path, events: int) -> str:
    """Prepare ``data_dir`` with ``events`` events; returns an auditor API key."""
    prep = prepare(data_dir)
    key_file = data_dir / "bench-producer.pem"
    save_private_key(prep.key, key_file)  # type: ignore[arg-type]
    ledger = Ledger(Config.load(data_dir))
    start = (datetime.now(UTC) - timedelta(days=30)).isoformat()
    jobs = [(str(key_file), off, min(CHUNK, events - off), start)
            for off in range(0, events, CHUNK)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(2) as pool:
        for chunk in pool.map(_sign, jobs):
            for i in range(0, len(chunk), 1000):
                ledger.submit(chunk[i : i + 1000])
    ledger.close()
    print(f"loaded {events} events in {time.perf_counter() - t0:.0f} s", flush=True)
    (data_dir / "bench-auditor.key").write_text(prep.auditor_token)
    return prep.auditor_token


def sample_ids(url: str, headers: dict[str, str], size: int, n: int = 2000) -> list[str]:
    from api.routes.read import encode_cursor

    ids: list[str] = []
    with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
        for _ in range(n // 100):
            at = random.randrange(size)
            page = c.get(f"/v1/controllers/{CONTROLLER}/events",
                         params={"limit": 100, "cursor": encode_cursor(at)}).json()
            ids += [e["event_id"] for e in page["items"]]
    return ids


def run(events: int = 1_000_000, data: Path | None = None, seconds: float = 20,
        concurrency: int = 4, projections: bool = False) -> dict[str, Any]:
    tmp = None
    if data is None:
        tmp = Path(tempfile.mkdtemp(prefix="auditledger-bench-reads-"))
        data = tmp / "ledger"
    try:
        if (data / "bench-auditor.key").exists():
            token = (data / "bench-auditor.key").read_text().strip()
        else:
            token = load(data, events)
        if projections:
            import subprocess

            from bench.http_common import CLI
            subprocess.run([*CLI, "projections", "run", "--data", str(data)], check=True,
                           stdout=subprocess.DEVNULL)
        server = Server(data, projections=projections)
        try:
            return _measure(server.url, token, seconds, concurrency, projections)
        finally:
            server.stop()
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _measure(url: str, token: str, seconds: float, concurrency: int,
             projections: bool) -> dict[str, Any]:
    from api.routes.read import encode_cursor

    headers = {"Authorization": f"Bearer {token}"}
    base = f"/v1/controllers/{CONTROLLER}"
    info = httpx.get(f"{url}{base}", headers=headers).json()
    size = info["size"]
    cp = httpx.get(f"{url}{base}/checkpoint", headers=headers).json()["size"]
    ids = sample_ids(url, headers, size)
    routes: list[tuple[str, Any]] = [
        ("events", lambda: (f"{base}/events",
                            {"limit": 100, "cursor": encode_cursor(random.randrange(size))})),
        ("events", lambda: (f"{base}/events",
                            {"limit": 100, "cursor": encode_cursor(random.randrange(size))})),
        ("inclusion", lambda: (f"{base}/proofs/inclusion/{random.choice(ids)}", None)),
        ("inclusion", lambda: (f"{base}/proofs/inclusion/{random.choice(ids)}", None)),
        ("consistency", lambda: (f"{base}/proofs/consistency",
                                 {"from": random.randrange(1, cp), "to": cp})),
        ("checkpoint", lambda: (f"{base}/checkpoint", None)),
        ("controller", lambda: (base, None)),
    ]
    if projections:
        for name in ("findings", "rights-requests", "breaches", "deadlines", "ropa"):
            routes.append((name, lambda name=name: (f"{base}/{name}", None)))
    lat: dict[str, list[float]] = {}
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker() -> None:
        mine: dict[str, list[float]] = {}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as c:
            while time.perf_counter() < stop_at:
                name, make = random.choice(routes)
                path, params = make()
                s = time.perf_counter()
                r = c.get(path, params=params)
                ms = (time.perf_counter() - s) * 1000
                if r.status_code != 200:
                    errors.append(f"{path} {r.status_code} {r.text[:100]}")
                mine.setdefault(name, []).append(ms)
        with lock:
            for k, v in mine.items():
                lat.setdefault(k, []).extend(v)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} failed reads: {errors[:3]}")
    every = [x for v in lat.values() for x in v]
    per_route = {k: {"n": len(v), "p50_ms": round(percentile(v, 50), 2),
                     "p99_ms": round(percentile(v, 99), 2)} for k, v in sorted(lat.items())}
    p50, p99 = percentile(every, 50), percentile(every, 99)
    result = {"events_stored": size, "requests": len(every), "seconds": seconds,
              "concurrency": concurrency, "rps": round(len(every) / seconds),
              "p50_ms": round(p50, 2), "p99_ms": round(p99, 2), "routes": per_route,
              "projections": projections}
    lines = [f"auditor reads, {size:,} events stored: {len(every)} requests in {seconds:.0f} s "
             f"({concurrency} client threads) p50 {p50:.2f} ms, p99 {p99:.2f} ms"]
    lines += [f"  {k:12} n={v['n']:6} p50 {v['p50_ms']:6.2f} ms  p99 {v['p99_ms']:6.2f} ms"
              for k, v in per_route.items()]
    result["text"] = "\n".join(lines)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--data", type=Path, default=None,
                   help="Keep the prepared ledger here (reused when it exists).")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--projections", action="store_true")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    res = run(args.events, args.data, args.seconds, args.concurrency, args.projections)
    print(orjson.dumps(res).decode() if args.json else res["text"])


if __name__ == "__main__":
    main()
