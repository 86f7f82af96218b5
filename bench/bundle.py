"""Evidence-bundle benchmark: build (and verify) a bundle of N events.

``python -m bench.bundle [--events 10000] [--data DIR]``: a ledger with ``--events``
events for one controller; times ``save_bundle`` of the whole log (streamed to a file:
every leaf, the compact range, checkpoints and consistency proofs, the signed manifest)
and ``auditledger verify`` of the result, each in a child process whose peak RSS is
printed: bundles are written and read as streams, so it stays flat as the log grows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.common import signed_events
from ledger.service import Ledger, init_data_dir
from ledger.signing import generate_key, public_key_text

CONTROLLER = "NO-921119224"


def _child(code: list[str]) -> tuple[float, int, int]:
    """Run ``code`` as a child process; (seconds, exit status, peak RSS in MiB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(code, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - t0, os.waitstatus_to_exitcode(status), usage.ru_maxrss // 1024


def load(data: Path, log_events: int) -> Ledger:
    """A ledger at ``data`` with ``log_events`` events of one controller (kept for reruns)."""
    if (data / "config.json").exists():
        from ledger.config import Config

        return Ledger(Config.load(data))
    cfg, _ = init_data_dir(data)
    ledger = Ledger(cfg)
    ledger.register_controller(CONTROLLER, {"name": "Bench AS", "country": "NO",
                                            "timezone": "Europe/Oslo"})
    key = generate_key()
    ledger.register_producer(CONTROLLER, "bench", public_key_text(key), ["*"])
    start = datetime.now(UTC) - timedelta(days=1)
    for i in range(0, log_events, 10_000):
        stream = signed_events(min(10_000, log_events - i), CONTROLLER, "bench", key,
                               start + timedelta(milliseconds=i))
        for j in range(0, len(stream), 1000):
            ledger.submit(stream[j : j + 1000])
    ledger.flush()
    return ledger


def run(events: int = 10_000, log_events: int | None = None,
        data: Path | None = None) -> dict[str, Any]:
    """Build and verify the whole-log bundle, each in its own process, so the peak RSS
    printed is the bundle's alone (not the loading's)."""
    log_events = max(log_events or events, events)
    tmp = Path(tempfile.mkdtemp(prefix="auditledger-bench-bundle-"))
    try:
        where = data or tmp / "ledger"
        # Loaded in a child too: a child's peak RSS counts the parent's pages at fork.
        _, code, _ = _child([sys.executable, "-c", "import sys; from pathlib import Path; "
                             "from bench.bundle import load; "
                             "load(Path(sys.argv[1]), int(sys.argv[2])).close()",
                             str(where), str(log_events)])
        if code:
            raise RuntimeError("loading the ledger failed")
        out = tmp / "bundle.zip"
        build_s, code, build_mb = _child([
            sys.executable, "-c",
            "import sys; from pathlib import Path; from ledger.config import Config; "
            "from ledger.service import Ledger; from ledger.bundle import save_bundle; "
            "lg = Ledger(Config.load(Path(sys.argv[1])), verifier_workers=0); "
            "save_bundle(lg, sys.argv[2], Path(sys.argv[3])); lg.close()",
            str(where), CONTROLLER, str(out)])
        if code:
            raise RuntimeError("building the bundle failed")
        key = (where / "keys" / "log.pub").read_text().strip()
        verify_s, code, verify_mb = _child([
            str(Path(sys.executable).parent / "auditledger"), "verify", str(out),
            "--log-key", key])
        if code:
            raise RuntimeError("the bundle does not verify")
        size = out.stat().st_size
        result = {"log_events": log_events + 2, "build_s": round(build_s, 2),
                  "build_peak_rss_mib": build_mb, "verify_s": round(verify_s, 2),
                  "verify_peak_rss_mib": verify_mb, "bundle_bytes": size}
        result["text"] = (f"whole-log bundle of {log_events + 2} events: built in "
                          f"{build_s:.1f} s (peak RSS {build_mb} MiB), {size / 1e6:.1f} MB; "
                          f"verified in {verify_s:.1f} s (peak RSS {verify_mb} MiB)")
        return result
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--log-events", type=int, default=None)
    p.add_argument("--data", type=Path, default=None, help="keep the loaded ledger here")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    res = run(args.events, args.log_events, args.data)
    print(orjson.dumps(res).decode() if args.json else res["text"])


if __name__ == "__main__":
    main()
