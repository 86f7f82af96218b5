"""Faults against a real broker: broker restart mid-stream, kill -9 of the sequencer, a
crash between the Kafka commit and the index write. Nothing acknowledged is lost,
nothing is duplicated, and the tree equals a clean SQLite run of the same events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ledger.config import Config
from ledger.log.kafka import KafkaLog
from ledger.service import Ledger, init_data_dir
from ledger.signing import save_private_key
from ledger.verify import LogSource, verify_source
from tests.conftest import CONTROLLER
from tests.kafka.conftest import LocalKafkaBroker
from tests.kafka.test_intake import kafka_world
from tests.kafka.test_log_kafka import read_committed

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CRASH_WRITER = ROOT / "tests" / "core" / "crash_writer.py"


def kafka_ids(bootstrap: str, log: KafkaLog) -> list[str]:
    return [dict(r.headers)["event_id"].decode()  # type: ignore[attr-defined]
            for r in read_committed(bootstrap, log.topic_events)]


def sqlite_replay(tmp: Path, bodies: list[bytes]) -> dict[str, Any]:
    """The same events, in the same order, through a clean SQLite ledger."""
    cfg, _ = init_data_dir(tmp)
    # A replay is history: no lateness bound (the events carry the fixture clock's times).
    ledger = Ledger(replace(cfg, max_lateness_seconds=None), verifier_workers=0)
    try:
        for i in range(0, len(bodies), 500):
            assert all(r.status == "accepted" for r in ledger.submit(bodies[i : i + 500]))
        ledger.flush()
        return verify_source(LogSource(ledger.log), [ledger.verifier_key]).to_dict()
    finally:
        ledger.close()


def submit_retrying(ledger: Ledger, batch: list[dict[str, Any]], deadline: float) -> list[Any]:
    """What a producer does: resubmit the same batch until it is answered."""
    while True:
        try:
            return ledger.submit(batch)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_broker_restart_mid_stream(tmp_path: Path, kafka_broker: LocalKafkaBroker) -> None:
    world = kafka_world(tmp_path, kafka_broker.bootstrap)
    ledger = world.ledger
    assert isinstance(ledger.log, KafkaLog)
    sent: list[str] = []
    statuses: dict[str, str] = {}
    restarted = threading.Event()
    batches = 0

    def bounce() -> None:
        kafka_broker.stop()
        time.sleep(1.0)
        kafka_broker.start()
        restarted.set()

    bouncer: threading.Thread | None = None
    deadline = time.monotonic() + 240
    while batches < 40 or not restarted.is_set():
        assert time.monotonic() < deadline, "stream did not finish"
        batch = [world.event(subject=f"u{batches}-{i}@example.org") for i in range(25)]
        sent.extend(e["event_id"] for e in batch)
        for r in submit_retrying(ledger, batch, deadline):
            statuses[r.event_id] = r.status
        batches += 1
        if batches == 10:
            bouncer = threading.Thread(target=bounce)
            bouncer.start()
    assert bouncer is not None
    bouncer.join()
    ledger.flush()
    try:
        assert all(statuses[e] in ("accepted", "duplicate") for e in sent)
        stored = [e.event_id for e in ledger.log.events(controller=CONTROLLER)]
        assert stored[2:] == sent, "every event once, in the order sent"
        ids = kafka_ids(kafka_broker.bootstrap, ledger.log)
        assert len(ids) == len(set(ids)) == len(sent) + 2, "no duplicate in the topic"
        bodies = [e.body for e in ledger.log.events()]
        ours = verify_source(LogSource(ledger.log), [ledger.verifier_key]).to_dict()
        clean = sqlite_replay(tmp_path / "sqlite", bodies)
        assert ours["ok"], ours["problems"][:3]
        assert ours["controllers"][CONTROLLER]["root"] == clean["controllers"][CONTROLLER]["root"]
        assert ours["controllers"][CONTROLLER]["size"] == len(sent) + 2
    finally:
        ledger.close()


def test_kill_9_sequencer_loses_no_acknowledged_event(
    tmp_path: Path, kafka_broker: LocalKafkaBroker
) -> None:
    world = kafka_world(tmp_path, kafka_broker.bootstrap)
    key_file = tmp_path / "crm.pem"
    save_private_key(world.key, key_file)
    world.ledger.close()
    acked: dict[str, int] = {}
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, str(CRASH_WRITER), str(world.data_dir), str(key_file), CONTROLLER],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        target = 300 + 137 * round_
        while len(acked) < target * (round_ + 1) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            eid, index = line.split()
            acked[eid] = int(index)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 300 * 3

    ledger = Ledger.open(world.data_dir, verifier_workers=0, clock=world.clock)
    try:
        log = ledger.log
        assert isinstance(log, KafkaLog)
        (res,) = ledger.submit([world.event()])  # becomes the sequencer: fences, catches up
        stored = {e.event_id: e.index for e in log.events(controller=CONTROLLER)}
        missing = [eid for eid in acked if eid not in stored]
        assert not missing, f"{len(missing)} acknowledged events lost"
        assert all(stored[eid] == idx for eid, idx in acked.items())
        assert sorted(stored.values()) == list(range(len(stored))), "indexes dense"
        assert res.status == "accepted" and res.index == len(stored) - 1
        ids = kafka_ids(kafka_broker.bootstrap, log)
        assert len(ids) == len(set(ids)) == len(stored), "topic and index agree, no dups"
        ledger.flush()
        report = verify_source(LogSource(log), [ledger.verifier_key])
        assert report.ok, report.problems[:3]
    finally:
        ledger.close()


def test_crash_between_kafka_commit_and_index_write(
    tmp_path: Path, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = kafka_world(tmp_path, kafka_bootstrap)
    ledger = world.ledger
    log = ledger.log
    assert isinstance(log, KafkaLog)
    first = [world.event() for _ in range(5)]
    real = KafkaLog._save_positions

    def boom(self: KafkaLog, futures: Any) -> None:
        raise OSError("disk full, after the Kafka commit")

    monkeypatch.setattr(KafkaLog, "_save_positions", boom)
    with pytest.raises(OSError):
        ledger.submit(first)
    monkeypatch.setattr(KafkaLog, "_save_positions", real)
    assert log.size(CONTROLLER) == 2, "index unchanged"
    # The producer resubmits the same batch: it is in Kafka already, so after catching
    # up the ledger answers "duplicate" with the original indexes; nothing is re-used.
    again = ledger.submit(first)
    assert [r.status for r in again] == ["duplicate"] * 5
    assert [r.index for r in again] == [2, 3, 4, 5, 6]
    (nxt,) = ledger.submit([world.event()])
    assert nxt.index == 7
    ids = kafka_ids(kafka_bootstrap, log)
    assert len(ids) == len(set(ids)) == 8
    ledger.close()


def test_reopen_config_uses_the_saved_prefix(tmp_path: Path, kafka_bootstrap: str) -> None:
    world = kafka_world(tmp_path, kafka_bootstrap)
    prefix = world.ledger.cfg.kafka_topic_prefix
    world.ledger.close()
    cfg = Config.load(world.data_dir)
    assert cfg.kafka_topic_prefix == prefix and cfg.backend == "kafka"
