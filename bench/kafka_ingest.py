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
        if started:
            try:
                _broker("stop", tmp / "broker")
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
