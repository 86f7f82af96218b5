"""Evidence-bundle benchmark: build (and verify) a bundle of N events.

``python -m bench.bundle [--events 10000] [--log-events N]``: a ledger with ``--log-events``
events (default = ``--events``) for one controller; times ``build_bundle`` for a period
holding ``--events`` of them (every inclusion proof, the consistency proofs, the signed
manifest, the zip), then ``verify`` of the result. Target: 10,000 events in under 2 s.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.common import signed_events
from ledger.bundle import BundleSource, build_bundle
from ledger.clock import format_rfc3339
from ledger.service import Ledger, init_data_dir
from ledger.signing import generate_key, public_key_text
from ledger.verify import verify_source

CONTROLLER = "NO-921119224"


def run(events: int = 10_000, log_events: int | None = None) -> dict[str, Any]:
    log_events = max(log_events or events, events)
    tmp = Path(tempfile.mkdtemp(prefix="auditledger-bench-bundle-"))
    try:
        cfg, _ = init_data_dir(tmp / "ledger")
        ledger = Ledger(cfg)
        ledger.register_controller(CONTROLLER, {"name": "Bench AS", "country": "NO",
                                                "timezone": "Europe/Oslo"})
        key = generate_key()
        ledger.register_producer(CONTROLLER, "bench", public_key_text(key), ["*"])
        start = datetime.now(UTC) - timedelta(days=1)
        stream = signed_events(log_events, CONTROLLER, "bench", key, start)
        for i in range(0, len(stream), 1000):
            ledger.submit(stream[i : i + 1000])
        ledger.flush()
        # The period: the last `events` events (1 ms apart in occurred_at).
        first = start + timedelta(milliseconds=log_events - events)
        period = (format_rfc3339(first), None) if log_events > events else (None, None)
        t0 = time.perf_counter()
        data = build_bundle(ledger, CONTROLLER, *period)
        build_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        source = BundleSource(data)
        report = verify_source(source, [ledger.verifier_key])
        verify_s = time.perf_counter() - t1
        ledger.close()
        if not report.ok:
            raise RuntimeError(f"bundle does not verify: {report.problems[:3]}")
        n = report.controllers[CONTROLLER]["events"]
        result = {"events_in_bundle": n, "log_events": log_events + 2,
                  "build_s": round(build_s, 3), "verify_s": round(verify_s, 3),
                  "bundle_bytes": len(data)}
        result["text"] = (f"bundle of {n} events (log of {log_events + 2}): built in "
                          f"{build_s:.2f} s, {len(data) / 1e6:.1f} MB; verified in "
                          f"{verify_s:.2f} s")
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--log-events", type=int, default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    res = run(args.events, args.log_events)
    print(orjson.dumps(res).decode() if args.json else res["text"])


if __name__ == "__main__":
    main()
