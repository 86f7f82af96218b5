"""The Kafka path of the ingest benchmark (``auditledger bench --backend kafka``).

Same measured path as ``bench.ingest`` (parse, schema, registry, Ed25519 verification,
idempotency lookup, Merkle hashing, checkpoints), but the durable append is the Kafka
sequencer's: one Kafka transaction per batch (``acks=all``, idempotent, events and
checkpoints together), ``commit_transaction()``, then the local index commit.

Without ``--kafka`` a private single-node broker is started with
``infra/kafka/broker start --dir <tmp>`` and stopped afterwards, so on a small machine the
broker competes with the ledger for the same cores: that is the figure we report.
Each run writes under its own topic prefix (``bench-<random>``), never into a real
ledger's ``auditledger.*`` topics.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.ingest import CONTROLLER, measure
from ledger.service import Ledger, init_data_dir
from ledger.signing import generate_key, public_key_text

BROKER = Path(__file__).resolve().parent.parent / "infra" / "kafka" / "broker"


def _broker(command: str, broker_dir: Path) -> str:
    proc = subprocess.run([sys.executable, str(BROKER), command, "--dir", str(broker_dir)],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"broker {command} failed: {proc.stderr.strip()[-2000:]}")
    lines = proc.stdout.strip().splitlines()
    return lines[-1].strip() if lines else ""


def run_kafka(events: int = 100_000, batch: int = 1000, workers: int | None = None,
              kafka: str | None = None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="auditledger-bench-kafka-"))
    started = kafka is None
    try:
        if started:
            kafka = _broker("start", tmp / "broker")
        assert kafka is not None
        cfg, _ = init_data_dir(tmp / "ledger", kafka)
        cfg = replace(cfg, kafka_topic_prefix=f"bench-{uuid.uuid4().hex[:10]}")
        cfg.save()
        ledger = Ledger(cfg, verifier_workers=workers)
        ledger.register_controller(CONTROLLER, {"name": "Bench AS", "country": "NO",
                                                "timezone": "Europe/Oslo"})
        key = generate_key()
        ledger.register_producer(CONTROLLER, "bench", public_key_text(key), ["*"])
        result = measure(ledger, key, events, batch, "kafka")
        result["kafka"] = kafka
        result["broker"] = "local (started for this run, same host)" if started else "given"
        result["text"] += f"\nKafka {kafka} ({result['broker']}), topics {cfg.kafka_topic('*')}"
        return result
    finally:
        _clean_up(tmp, started)


def _clean_up(tmp: Path, started: bool) -> None:
    """Remove the run's directory, after stopping the broker it started (if it did)."""
    try:
        if started:
            _broker("stop", tmp / "broker")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# -- several sequencers: one process per events partition ----------------------------------

WORKER = "from bench.kafka_ingest import sequencer_worker; sequencer_worker()"


def controllers_for(partitions: int) -> list[str]:
    """One controller id per events partition (``partition_for``'s SHA-256 mapping)."""
    from ledger.log.kafka import partition_for

    found: dict[int, str] = {}
    n = 921119224
    while len(found) < partitions:
        c = f"NO-{n}"
        found.setdefault(partition_for(c, partitions), c)
        n += 1
    return [found[p] for p in range(partitions)]


def sequencer_worker() -> None:
    """One sequencer process of ``run_sequencers``: argv = data dir, controller, key
    file, events, batch, workers. Signs its stream, says "ready", waits for "go" on
    stdin, ingests, prints its figures as JSON (wall-clock start and end included)."""
    import json

    from bench.common import signed_events, summary
    from ledger.signing import load_private_key

    data, controller, key_file, events, batch, workers = sys.argv[1:7]
    n, size = int(events), int(batch)
    ledger = Ledger.open(Path(data), verifier_workers=int(workers) if workers != "-" else None)
    stream = signed_events(n + size, controller, "bench", load_private_key(Path(key_file)))
    ledger.submit(stream[:size])  # warm the pool and become the partition's sequencer
    stream = stream[size:]
    print("ready", flush=True)
    sys.stdin.readline()
    latencies: list[float] = []
    accepted = 0
    t0, w0 = time.perf_counter(), time.time()
    for i in range(0, len(stream), size):
        s = time.perf_counter()
        results = ledger.submit(stream[i : i + size])
        latencies.append((time.perf_counter() - s) * 1000)
        accepted += sum(r.status == "accepted" for r in results)
    elapsed, w1 = time.perf_counter() - t0, time.time()
    partitions = ledger.log.sequenced()  # type: ignore[attr-defined]
    ledger.close()
    print(json.dumps({"controller": controller, "events": accepted, "seconds": elapsed,
                      "start": w0, "end": w1, "latency": summary(latencies),
                      "partitions": partitions}), flush=True)


def run_sequencers(sequencers: int, events: int = 100_000, batch: int = 1000,
                   workers: int | None = None, kafka: str | None = None) -> dict[str, Any]:
    """``events`` in total over ``sequencers`` processes, each the sequencer of its own
    events partition of one per-partition ledger (own data directory, own transactional
    id ``<prefix>.sequencer.<p>``), each ingesting one controller of its partition.
    events/s = all events / (last end - first start)."""
    import json
    import shutil as _shutil

    tmp = Path(tempfile.mkdtemp(prefix="auditledger-bench-kafka-"))
    started = kafka is None
    procs: list[subprocess.Popen[str]] = []
    try:
        if started:
            kafka = _broker("start", tmp / "broker")
        assert kafka is not None
        prefix = f"bench-{uuid.uuid4().hex[:10]}"
        cfg, _ = init_data_dir(tmp / "ledger", kafka, partitions=sequencers,
                               sequencers="per-partition")
        cfg = replace(cfg, kafka_topic_prefix=prefix)
        cfg.save()
        ledger = Ledger(cfg, verifier_workers=0)
        controllers = controllers_for(sequencers)
        from ledger.signing import save_private_key

        for c in controllers:
            ledger.register_controller(c, {"name": "Bench AS", "country": "NO",
                                           "timezone": "Europe/Oslo"})
            key = generate_key()
            save_private_key(key, tmp / f"{c}.pem")
            ledger.register_producer(c, "bench", public_key_text(key), ["*"])
        ledger.close()
        per = events // sequencers
        for i, c in enumerate(controllers):
            data = tmp / f"seq{i}"
            data.mkdir()
            _shutil.copy2(tmp / "ledger" / "config.json", data / "config.json")
            _shutil.copytree(tmp / "ledger" / "keys", data / "keys")
            procs.append(subprocess.Popen(
                [sys.executable, "-c", WORKER, str(data), c, str(tmp / f"{c}.pem"), str(per),
                 str(batch), "-" if workers is None else str(workers)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        figures = []
        for p in procs:
            assert p.stdout is not None
            figures.append(json.loads(p.stdout.read().strip().splitlines()[-1]))
            if p.wait(timeout=600) != 0:
                raise RuntimeError("a sequencer process failed")
        total = sum(f["events"] for f in figures)
        if total != per * sequencers:
            raise RuntimeError(f"only {total} of {per * sequencers} accepted")
        wall = max(f["end"] for f in figures) - min(f["start"] for f in figures)
        rate = total / wall
        lines = [f"kafka, {sequencers} sequencers (one process per events partition):"
                 f" {total} signed events in {wall:.2f} s = {rate:,.0f} events/s"
                 f" (batches of {batch})"]
        lines += [f"  partition {f['partitions']}: {f['controller']} {f['events']} events,"
                  f" {f['events'] / f['seconds']:,.0f} events/s, append p50"
                  f" {f['latency']['p50_ms']} ms, p99 {f['latency']['p99_ms']} ms"
                  for f in figures]
        lines.append(f"Kafka {kafka} ({'local, same host' if started else 'given'}),"
                     f" topics {prefix}.*")
        return {"backend": "kafka", "sequencers": sequencers, "events": total,
                "batch": batch, "seconds": round(wall, 3), "events_per_s": round(rate),
                "per_sequencer": figures, "kafka": kafka, "text": "\n".join(lines)}
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        _clean_up(tmp, started)
