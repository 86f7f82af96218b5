"""Producer-client benchmark (docs/benchmarks.md, docs/producer-client.md).

``auditledger bench-http producer [--events 5000] [--drain 100000]``, against
``auditledger serve --no-projections`` in another process:

1. client-side events/s: ``Producer.emit`` one event at a time (build, sign, queue) with
   the outbox on (a SQLite file, one fsynced commit per ``emit``) and off (``outbox=None``,
   in memory, nothing survives a crash), and with ``emit_envelopes`` of 100 (one fsync per
   100) — and the end-to-end rate until ``flush()`` has every event delivered;
2. drain after an outage: ``--drain`` events queued while no ledger answers, then
   ``serve`` starts; the time from the server answering ``/healthz`` until ``flush()``
   returns (``flush`` ends the sender's backoff wait, so it retries at once; every event
   accepted over HTTP in batches of 500).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.http_common import CONTROLLER, Server, free_port, prepare
from ledger.client import Producer

CONSENT = {"purposes": ["newsletter"], "method": "web_form", "notice_version": "v1"}


def _producer(url: str, token: str, key: Any, outbox: Path | None, **kw: Any) -> Producer:
    return Producer(producer="bench", key=key, outbox=outbox, controller=CONTROLLER, url=url,
                    api_key=token, subject_key=b"b" * 32, max_queued=10**9, **kw)


def _emit_rate(url: str, token: str, key: Any, outbox: Path | None, events: int,
               batch: int | None) -> dict[str, Any]:
    p = _producer(url, token, key, outbox)
    try:
        t0 = time.perf_counter()
        if batch is None:
            for i in range(events):
                p.emit("consent.given", CONSENT, identifier=f"u{i}@example.org")
        else:
            for at in range(0, events, batch):
                p.emit_envelopes([p.build("consent.given", CONSENT,
                                          identifier=f"u{i}@example.org")
                                  for i in range(at, min(at + batch, events))])
        emitted = time.perf_counter() - t0
        p.flush(timeout=600)
        done = time.perf_counter() - t0
        assert p.metrics()["failed"] == 0, p.dead_letters(3)
    finally:
        p.close()
    return {"emit_per_s": round(events / emitted), "delivered_per_s": round(events / done)}


def run(events: int = 5000, drain: int = 100_000) -> dict[str, Any]:
    logging.getLogger("ledger.producer").setLevel(logging.ERROR)  # the outage's warnings
    tmp = Path(tempfile.mkdtemp(prefix="auditledger-bench-producer-"))
    try:
        prep = prepare(tmp / "ledger")
        out: dict[str, Any] = {"events": events, "drain_events": drain}
        server = Server(prep.data_dir, projections=False)
        try:
            args = (server.url, prep.producer_token, prep.key)
            out["outbox_on"] = _emit_rate(*args, tmp / "on.sqlite", events, None)
            out["outbox_off"] = _emit_rate(*args, None, events, None)
            out["outbox_on_batch100"] = _emit_rate(*args, tmp / "b.sqlite", events, 100)
        finally:
            server.stop()
        out.update(_drain(prep, tmp, drain))
        out["text"] = (
            f"emit, outbox on: {out['outbox_on']['emit_per_s']:,}/s "
            f"(delivered {out['outbox_on']['delivered_per_s']:,}/s); outbox off: "
            f"{out['outbox_off']['emit_per_s']:,}/s "
            f"(delivered {out['outbox_off']['delivered_per_s']:,}/s); outbox on, "
            f"emit_envelopes of 100: {out['outbox_on_batch100']['emit_per_s']:,}/s; "
            f"drain of {drain:,} queued events after an outage: {out['drain_s']} s "
            f"({out['drain_per_s']:,}/s; queueing them took {out['queue_s']} s)")
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _drain(prep: Any, tmp: Path, drain: int) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    p = _producer(url, prep.producer_token, prep.key, tmp / "drain.sqlite")
    try:
        t0 = time.perf_counter()
        for at in range(0, drain, 1000):
            p.emit_envelopes([p.build("consent.given", CONSENT, identifier=f"d{i}@example.org")
                              for i in range(at, min(at + 1000, drain))])
        queue_s = time.perf_counter() - t0
        assert p.metrics()["queued"] == drain
        server = Server(prep.data_dir, port=port, projections=False)
        try:
            t1 = time.perf_counter()
            p.flush(timeout=1800)
            drain_s = time.perf_counter() - t1
            assert p.metrics()["failed"] == 0
        finally:
            server.stop()
    finally:
        p.close()
    return {"queue_s": round(queue_s, 1), "drain_s": round(drain_s, 1),
            "drain_per_s": round(drain / drain_s)}


if __name__ == "__main__":
    import orjson

    print(orjson.dumps(run()).decode())
