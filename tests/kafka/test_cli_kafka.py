"""`init --kafka`, then emit/verify unchanged; the same events give the same tree on
SQLite and on Kafka."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from ledger.config import Config
from ledger.service import Ledger, init_data_dir
from ledger.verify import LogSource, verify_source
from tests.conftest import CONTROLLER, make_world

pytestmark = pytest.mark.kafka

CLI = [sys.executable, "-c", "from ledger.cli import main; main()"]
ROOT = Path(__file__).resolve().parents[2]


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, timeout=180)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed: {proc.stderr}")
    return proc


def test_cli_on_kafka(tmp_path: Path, kafka_bootstrap: str) -> None:
    env = {"AUDITLEDGER_KAFKA_TOPIC_PREFIX": f"cli-{uuid.uuid4().hex[:10]}"}
    data = tmp_path / "d"
    init = orjson.loads(run(env, "init", "--data", str(data), "--kafka", kafka_bootstrap).stdout)
    assert init["log_public_key"].startswith("auditledger+")
    cfg = orjson.loads((data / "config.json").read_bytes())
    assert cfg["backend"] == "kafka" and cfg["kafka_bootstrap"] == kafka_bootstrap
    assert cfg["kafka_topic_prefix"] == env["AUDITLEDGER_KAFKA_TOPIC_PREFIX"]
    # Later commands need no flag: config.json says Kafka (and which prefix).
    run({}, "controller", "register", "--data", str(data), "--id", CONTROLLER, "--name",
        "Bedre Bedrift AS", "--country", "NO", "--tz", "Europe/Oslo", "--json")
    key = tmp_path / "crm.pem"
    pub = orjson.loads(run({}, "keygen", "--out", str(key), "--json").stdout)["public_key"]
    run({}, "producer", "register", "--data", str(data), "--controller", CONTROLLER,
        "--id", "crm", "--public-key", pub, "--types", "consent.*", "--json")
    lines = [{"type": "consent.given", "controller": CONTROLLER, "subject": "psn:" + "A" * 43,
              "data": {"purposes": ["newsletter"], "method": "web", "notice_version": "v1"}}
             for _ in range(25)]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
    # --kafka / AUDITLEDGER_KAFKA override the address of an existing Kafka ledger.
    emitted = run({"AUDITLEDGER_KAFKA": kafka_bootstrap}, "emit", "--data", str(data),
                  "--key", str(key), "--producer", "crm", str(events))
    results = [orjson.loads(x) for x in emitted.stdout.splitlines()]
    assert [r["index"] for r in results] == list(range(2, 27))
    report = orjson.loads(run({}, "verify", str(data), "--json").stdout)
    assert report["ok"] and report["controllers"][CONTROLLER]["size"] == 27

    # The index is derived: delete it and verify rebuilds it from the topics.
    for name in ("kafka-index.sqlite", "kafka-index.sqlite-wal", "kafka-index.sqlite-shm"):
        (data / name).unlink(missing_ok=True)
    again = orjson.loads(run({}, "verify", str(data), "--json").stdout)
    assert again == report


def test_sqlite_and_kafka_give_the_same_tree(tmp_path: Path, kafka_bootstrap: str) -> None:
    world = make_world(tmp_path / "sqlite")
    for i in range(40):
        world.ledger.submit([world.event(subject=f"user{i}@example.org")])
    world.ledger.submit([world.event("processing.performed", {
        "activity_id": "a", "basis": "A6-1-b", "data_categories": ["contact"]})
        for _ in range(1200)])
    world.ledger.flush()
    bodies = [e.body for e in world.ledger.log.events()]

    cfg, _ = init_data_dir(tmp_path / "kafka", kafka_bootstrap)
    cfg = Config(**{**cfg.__dict__, "kafka_topic_prefix": f"eq-{uuid.uuid4().hex[:10]}"})
    cfg.save()
    kafka = Ledger(cfg, clock=world.clock, verifier_workers=0)
    try:
        results = []
        for i in range(0, len(bodies), 500):
            results.extend(kafka.submit(bodies[i : i + 500]))
        assert all(r.status == "accepted" for r in results), results[:3]
        kafka.flush()
        sq = {e.event_id: (e.index, e.leaf_hash) for e in world.ledger.log.events()}
        kf = {e.event_id: (e.index, e.leaf_hash) for e in kafka.log.events()}
        assert sq == kf
        a = verify_source(LogSource(world.ledger.log), [world.ledger.verifier_key]).to_dict()
        b = verify_source(LogSource(kafka.log), [kafka.verifier_key]).to_dict()
        assert a["ok"] and b["ok"], (a["problems"][:3], b["problems"][:3])
        for c in (CONTROLLER,):
            assert a["controllers"][c]["size"] == b["controllers"][c]["size"] == 1242
            assert a["controllers"][c]["root"] == b["controllers"][c]["root"]
    finally:
        kafka.close()
        world.ledger.close()
