"""Projections fed straight from the events topic (``KafkaSource``) on the real broker:
one tracked position per topic-partition, exactly once across restarts and a ``kill -9``,
and the same read models as the same events read through the log index."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest

from ledger.clock import FixedClock
from ledger.config import Config
from ledger.envelope import complete
from ledger.log.kafka import partition_for
from ledger.service import Ledger, init_data_dir
from ledger.signing import generate_key, public_key_text
from projections.kafka_source import KafkaSource
from projections.runner import LogSource, ProjectionRunner
from projections.store import SQLiteStore
from tests.projections.projection_streams import CID, LEDGER_NOW, Scenario, generate

pytestmark = pytest.mark.kafka

OTHER = "DK-26459400"
ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from ledger.cli import main; main()"]

# Columns that hold the source's position (``seq``): an offset + 1 from the topic, a
# global sequence number from the index. Everything else must be equal.
SEQ_COLUMN = {"consents": 4, "records": 2, "findings": 1}


def _facts(store: SQLiteStore) -> list[bytes]:
    """The dump without the position columns (and the stats entity's ``last_seq``)."""
    out, table = [], ""
    for line in store.dump().splitlines():
        if line.startswith(b"# "):
            table = line[2:].decode()
            continue
        row = orjson.loads(line)
        if table in SEQ_COLUMN:
            del row[SEQ_COLUMN[table]]
        elif row[0] == "stats":
            doc = orjson.loads(row[3])
            doc.pop("last_seq")
            row[3] = doc
        out.append(orjson.dumps([table, *row], option=orjson.OPT_SORT_KEYS))
    return sorted(out)


def _partitions_apart() -> int:
    """A partition count that puts the two controllers in different partitions."""
    return next(n for n in range(2, 16) if partition_for(CID, n) != partition_for(OTHER, n))


@pytest.fixture(scope="module")
def kafka_ledger(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str):  # type: ignore[no-untyped-def]
    """Two controllers' mixed streams (about 1,900 events) in a Kafka ledger whose events
    topic has the two controllers in different partitions."""
    tmp = tmp_path_factory.mktemp("kproj")
    s = Scenario(tmp / "sqlite")
    generate(s, 1500, seed=31)
    s.flush()
    s.ledger.register_controller(OTHER, {"name": "Bedre Bedrift ApS", "country": "DK",
                                         "timezone": "Europe/Copenhagen"})
    key = generate_key()
    assert s.ledger.register_producer(OTHER, "shop", public_key_text(key), ["*"]).status \
        == "accepted"
    other = []
    for i in range(400):
        subject = s.subject(f"kunde{i % 60}@example.dk")
        if i % 3 == 0:
            env = {"type": "consent.given", "data": {"purposes": ["marketing"],
                   "method": "web", "notice_version": "v1", "evidence_ref": "x"}}
        else:
            env = {"type": "processing.performed", "data": {
                "activity_id": "newsletter", "basis": "A6-1-a", "data_categories": ["contact"]}}
        env.update(controller=OTHER, subject=subject,
                   occurred_at=f"2026-02-01T10:{i // 60:02d}:{i % 60:02d}Z")
        other.append(complete(env, key, "shop"))
    assert all(r.status == "accepted" for r in s.ledger.submit(other))
    s.ledger.flush()
    bodies = [e.body for e in s.ledger.log.events()]
    s.ledger.close()

    cfg, _ = init_data_dir(tmp / "kafka", kafka_bootstrap)
    cfg = Config(**{**cfg.__dict__, "kafka_topic_prefix": f"proj-{uuid.uuid4().hex[:10]}",
                    "kafka_partitions": _partitions_apart(),
                    "max_lateness_seconds": None})  # the streams are history
    cfg.save()
    ledger = Ledger(cfg, clock=FixedClock(LEDGER_NOW), verifier_workers=0)
    for i in range(0, len(bodies), 500):
        results = ledger.submit(bodies[i : i + 500])
        assert all(r.status == "accepted" for r in results), results[:3]
    ledger.flush()
    yield cfg, ledger
    ledger.close()


def test_positions_per_partition_and_same_facts_as_the_log(kafka_ledger, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, ledger = kafka_ledger
    topic = cfg.kafka_topic("events")
    reference = SQLiteStore(tmp_path / "from-log.sqlite")
    ProjectionRunner(LogSource(ledger.log), reference, batch_size=300).run_once()

    source = KafkaSource(cfg.kafka_bootstrap, topic)
    store = SQLiteStore(tmp_path / "from-topic.sqlite")
    try:
        assert len(source.partitions()) == cfg.kafka_partitions >= 2
        # Stop and start again part-way, as a restarted worker would: nothing twice.
        first = ProjectionRunner(source, store, batch_size=250)
        applied = first.run_once(max_events=700)
        assert 700 <= applied < ledger.log.last_seq()
        applied += ProjectionRunner(source, store, batch_size=250).run_once()
        assert applied == ledger.log.last_seq()
        assert ProjectionRunner(source, store).run_once() == 0

        # One position per topic-partition: the next offset after the last record there.
        used = {partition_for(c, cfg.kafka_partitions) for c in (CID, OTHER)}
        for p in source.partitions():
            name = f"{topic}/{p}"
            pos = store.max_tracking_id(name)
            if p in used:
                rows = source.read_rows(p, 0, 10**6)
                assert pos == rows[-1][0]  # last record's offset + 1
                assert source.read_rows(p, pos, 10) == []
            else:
                assert pos is None
        assert store.max_tracking_id("log/0") is None

        # The same facts as the log index gives (positions aside); counts prove no
        # event was applied twice.
        assert _facts(store) == _facts(reference)
        stats = {c: store.entity("stats", c, "events") for c in (CID, OTHER)}
        assert stats[OTHER]["by_type"]["consent.given"] == 134
        assert sum(s["total"] for s in stats.values()) == ledger.log.last_seq()
    finally:
        source.close()
        store.close()
        reference.close()


def test_kill_9_of_a_kafka_fed_worker_and_a_restart(kafka_ledger, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cfg, ledger = kafka_ledger
    data = cfg.data_dir
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    target = str(tmp_path / "rm.sqlite")
    args = ["projections", "run", "--data", str(data), "--store", target,
            "--source", "kafka", "--batch-size", "20"]
    proc = subprocess.Popen([*CLI, *args, "--follow"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    topic = cfg.kafka_topic("events")
    names = [f"{topic}/{p}" for p in range(cfg.kafka_partitions)]

    def committed() -> int:
        """The worker's positions, read without writing: opening a ``SQLiteStore`` runs
        DDL, which races the worker creating the file ("database is locked")."""
        try:
            conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
            try:
                marks = ",".join("?" * len(names))
                row = conn.execute("SELECT sum(notification_id) FROM tracking"
                                   f" WHERE application_name IN ({marks})", names).fetchone()
            finally:
                conn.close()
        except sqlite3.OperationalError:  # not created yet, or being set up
            return 0
        return int(row[0] or 0)

    deadline = time.monotonic() + 120
    while committed() < 200:  # kill it once some batches, not all, are committed
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the worker committed nothing"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = committed()
    out = subprocess.run([*CLI, *args, "--json"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    final = orjson.loads(out.stdout)["positions"]
    assert partial < sum(final.values())  # it was killed mid-way

    store = SQLiteStore(target)
    reference = SQLiteStore(tmp_path / "ref.sqlite")
    try:
        ProjectionRunner(LogSource(ledger.log), reference, batch_size=500).run_once()
        assert _facts(store) == _facts(reference)
        status = orjson.loads(subprocess.run(
            [*CLI, "projections", "status", "--data", str(data), "--store", target,
             "--source", "kafka", "--json"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True).stdout)
        assert set(status["positions"]) == set(names)
        assert status["lag"] <= cfg.kafka_partitions  # at most one commit marker each
    finally:
        store.close()
        reference.close()
