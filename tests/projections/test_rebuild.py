"""A rebuild from an empty store gives byte-identical read models to the live ones."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess

import pytest
from conftest import StoreFactory
from eventsourcing.persistence import IntegrityError
from projection_streams import CID, Scenario, generate

from projections import pipes
from projections.runner import ProjectionRunner, rebuild
from projections.store import ReadModelStore
from projections.writer import WriterError


def test_live_projection_interleaved_with_appends_equals_a_rebuild(
    scenario: Scenario, store_factory: StoreFactory
) -> None:
    live = store_factory()
    runner = ProjectionRunner(scenario.source(), live, batch_size=37)
    for part in range(6):  # the log grows while the projection follows it
        generate(scenario, 1500, seed=100 + part)
        scenario.flush()
        runner.run_once()
    fresh = store_factory()
    n = rebuild(scenario.source(), fresh, batch_size=5000)
    assert n == scenario.ledger.log.last_seq()
    assert live.dump() == fresh.dump()
    assert live.entity("stats", CID, "events")["total"] == n - 0  # one controller here


def test_a_failed_commit_leaves_nothing_and_the_retry_converges(
    scenario: Scenario, store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the commit thread (no writer process): the second commit fails."""
    generate(scenario, 2000, seed=5)
    scenario.flush()
    live = store_factory()
    runner = ProjectionRunner(scenario.source(), live, batch_size=300)
    runner.writer_process = False
    runner.run_once(max_events=600)
    real_commit = live.commit
    committed: list[int] = []

    def flaky(writes, tracking):  # type: ignore[no-untyped-def]
        if len(committed) == 1:
            raise OSError("disk went away")  # the crash between apply and commit
        real_commit(writes, tracking)
        committed.append(tracking.notification_id)

    monkeypatch.setattr(live, "commit", flaky)
    with pytest.raises(OSError):
        runner.run_once()
    assert runner.position() == committed[0] > 600  # the run's first batch, no more
    monkeypatch.setattr(live, "commit", real_commit)
    runner.run_once()
    fresh = store_factory()
    rebuild(scenario.source(), fresh)
    assert live.dump() == fresh.dump()


def test_a_writer_process_killed_mid_commit_leaves_nothing_and_the_retry_converges(
    scenario: Scenario, store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catch-up commits in a writer process: ``kill -9`` it just after it was sent
    the third batch. That batch is either wholly committed with its position or not at
    all; the runner raises, and the next run converges on the rebuild."""
    generate(scenario, 3000, seed=6)
    scenario.flush()
    live = store_factory()
    runner = ProjectionRunner(scenario.source(), live, batch_size=300)
    real_send, real_spawn = pipes.send, pipes.spawn
    writers: list[subprocess.Popen[bytes]] = []
    sent: list[int] = []  # the positions of the commits sent

    def spawn(module, *args, **kw):  # type: ignore[no-untyped-def]
        proc = real_spawn(module, *args, **kw)
        if module == "projections.writer":
            writers.append(proc)
        return proc

    def send_then_kill(stream, payload):  # type: ignore[no-untyped-def]
        real_send(stream, payload)
        request = pickle.loads(payload)
        if request.get("op") == "commit":
            sent.append(request["tracking"][1])
            if len(sent) == 3:
                os.kill(writers[-1].pid, signal.SIGKILL)

    monkeypatch.setattr(pipes, "spawn", spawn)
    monkeypatch.setattr(pipes, "send", send_then_kill)
    with pytest.raises(WriterError, match="died"):
        runner.run_once()
    assert len(writers) == 1 and writers[0].wait(5) == -signal.SIGKILL
    before = runner.position()
    assert before in sent[1:3]  # two batches, or three: never part of one
    monkeypatch.setattr(pipes, "send", real_send)
    assert runner.run_once() == scenario.ledger.log.last_seq() - before
    fresh = store_factory()
    rebuild(scenario.source(), fresh)
    assert live.dump() == fresh.dump()


def test_replaying_an_applied_batch_is_refused(scenario: Scenario, store: ReadModelStore) -> None:
    generate(scenario, 300, seed=9)
    runner = scenario.project(store, batch_size=100)
    before = store.dump()
    events = list(scenario.ledger.log.events(after_seq=0, limit=100))
    from projections.runner import Position

    with pytest.raises(IntegrityError):
        runner.projection.process_batch(events, Position("log", 0, 100).tracking())
    assert store.dump() == before


@pytest.mark.postgres
def test_sqlite_and_postgresql_hold_the_same_rows(
    scenario: Scenario, tmp_path, pg_dsn: str  # type: ignore[no-untyped-def]
) -> None:
    import uuid

    import psycopg

    from projections.store import PostgresStore, SQLiteStore

    generate(scenario, 3000, seed=11)
    scenario.flush()
    lite = SQLiteStore(tmp_path / "x.sqlite")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    pg = PostgresStore(pg_dsn, schema=schema)
    try:
        rebuild(scenario.source(), lite)
        rebuild(scenario.source(), pg, batch_size=211)
        assert lite.dump() == pg.dump()
    finally:
        lite.close()
        pg.close()
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.parametrize("writer_process", [True, False])
def test_caches_dropped_for_memory_mid_catch_up_read_only_committed_state(
    scenario: Scenario, store_factory: StoreFactory, writer_process: bool
) -> None:
    """When the caches grow past their limit they are dropped between two batches, and the
    next batch reads what it needs from the store: the batches still in flight must be
    committed first, or a consent given there is missed by the processing that follows."""
    generate(scenario, 4000, seed=31)
    scenario.flush()
    small = store_factory()
    runner = ProjectionRunner(scenario.source(), small, batch_size=200)
    runner.writer_process = writer_process
    runner.projection.batch.cache_limit = 50  # dropped after every batch
    assert runner.run_once() == scenario.ledger.log.last_seq()
    fresh = store_factory()
    rebuild(scenario.source(), fresh, batch_size=5000)
    assert small.dump() == fresh.dump()
