"""The fast replay paths give the same read models as the plain ones.

- a catch-up read by the reader process (``projections.prefetch``) equals one read in the
  runner's thread; stopping early (``max_events``) stops the reader process; a reader
  that dies leaves the rest to the runner's own reads;
- a catch-up committed by the writer process (``projections.writer``) equals one committed
  on the runner's thread; a runner that only follows the log starts no writer process;
- a load into an empty store drops the secondary indexes and builds them again;
- a SQLite file of an older layout is emptied on open, and the runner rebuilds it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import StoreFactory
from projection_streams import Scenario, generate

from projections import prefetch
from projections.runner import LogSource, ProjectionRunner, rebuild
from projections.store import INDEXES, SQLiteStore, open_spec
from projections.writer import WriterProcess


class _InThread(LogSource):
    """The same log, never read by a reader process."""

    splits = False

    def prefetch(self, partition: int, after: int, chunk: int,
                 shard_fd: int | None = None) -> prefetch.Prefetcher | None:
        return None


def test_reader_process_and_in_thread_reads_give_the_same_models(
    scenario: Scenario, store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(scenario, 3000, seed=21)
    scenario.flush()
    started: list[prefetch.Prefetcher] = []
    real_init = prefetch.Prefetcher.__init__

    def spy(self: prefetch.Prefetcher, *args: object) -> None:
        real_init(self, *args)  # type: ignore[arg-type]
        started.append(self)

    monkeypatch.setattr(prefetch.Prefetcher, "__init__", spy)
    ahead = store_factory()
    n = ProjectionRunner(scenario.source(), ahead, batch_size=250).run_once()
    assert started and all(p.proc.returncode is not None for p in started)
    here = store_factory()
    assert ProjectionRunner(_InThread(scenario.ledger.log), here, batch_size=250).run_once() == n
    assert n == scenario.ledger.log.last_seq()
    assert ahead.dump() == here.dump()


def test_writer_process_and_commit_thread_give_the_same_models(
    scenario: Scenario, store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catch-up commits in a writer process (binding rows one by one, on SQLite), a
    runner told not to on its own thread (one JSON statement per table): same rows."""
    generate(scenario, 3000, seed=26)
    scenario.flush()
    started: list[WriterProcess] = []
    real_init = WriterProcess.__init__

    def spy(self: WriterProcess, *args: object) -> None:
        real_init(self, *args)  # type: ignore[arg-type]
        started.append(self)

    monkeypatch.setattr(WriterProcess, "__init__", spy)
    apart = store_factory()
    n = ProjectionRunner(scenario.source(), apart, batch_size=250).run_once()
    assert len(started) == 1 and started[0].proc.returncode == 0  # closed, cleanly
    here = store_factory()
    runner = ProjectionRunner(scenario.source(), here, batch_size=250)
    runner.writer_process = False
    assert runner.run_once() == n == scenario.ledger.log.last_seq()
    assert len(started) == 1
    assert apart.dump() == here.dump()
    # A runner that follows the log (no catch-up) commits on its thread.
    generate(scenario, 100, seed=27)
    scenario.flush()
    assert ProjectionRunner(scenario.source(), apart, batch_size=250).run_once() > 0
    assert len(started) == 1


def test_stopping_early_stops_the_reader_and_resumes_exactly(
    scenario: Scenario, store_factory: StoreFactory
) -> None:
    generate(scenario, 3000, seed=22)
    scenario.flush()
    live = store_factory()
    runner = ProjectionRunner(scenario.source(), live, batch_size=200)
    # It stops at the end of the batch that reaches 600 (a reader's first chunks are
    # smaller: ``prefetch.chunk_size``), far from the end.
    applied = runner.run_once(max_events=600)
    assert 600 <= applied < 800 and runner.position() == applied
    assert runner.run_once() == scenario.ledger.log.last_seq() - applied
    fresh = store_factory()
    rebuild(scenario.source(), fresh)
    assert live.dump() == fresh.dump()


def test_a_reader_process_that_dies_leaves_the_rest_to_the_runner(
    scenario: Scenario, store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(scenario, 3000, seed=25)
    scenario.flush()
    real_iter = prefetch.Prefetcher.__iter__

    def dying(self: prefetch.Prefetcher) -> Iterator[list[prefetch.Row]]:
        chunks = real_iter(self)
        yield next(chunks)
        self.proc.kill()
        self.proc.wait()
        yield from chunks

    monkeypatch.setattr(prefetch.Prefetcher, "__iter__", dying)
    live = store_factory()
    n = ProjectionRunner(scenario.source(), live, batch_size=200).run_once()
    assert n == scenario.ledger.log.last_seq()
    fresh = store_factory()
    rebuild(scenario.source(), fresh)
    assert live.dump() == fresh.dump()


@pytest.mark.parametrize("writer_process", [True, False], ids=["writer", "thread"])
def test_a_load_into_an_empty_store_rebuilds_its_indexes(
    scenario: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer_process: bool
) -> None:
    generate(scenario, 1500, seed=23)
    scenario.flush()
    store = SQLiteStore(tmp_path / "rm.sqlite")
    dropped: list[bool] = []
    real_drop = store.drop_indexes

    def drop() -> None:
        real_drop()
        dropped.append(True)

    store.drop_indexes = drop  # type: ignore[method-assign]
    calls: list[str] = []
    for name in ("commit", "create_indexes"):
        if writer_process:
            real = getattr(WriterProcess, name)
            monkeypatch.setattr(WriterProcess, name, lambda self, *a, real=real, name=name: (
                calls.append(name), real(self, *a))[1])
        else:
            real = getattr(store, name)
            setattr(store, name, lambda *a, real=real, name=name: (calls.append(name), real(*a)))
    runner = ProjectionRunner(scenario.source(), store, batch_size=100)
    runner.writer_process = writer_process
    runner.run_once()
    assert dropped == [True]
    # Built once, by whoever commits, before the last batches (which then fill it).
    assert calls.count("create_indexes") == 1
    assert 0 < calls.index("create_indexes") < len(calls) - 1
    conn = sqlite3.connect(tmp_path / "rm.sqlite")
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    conn.close()
    assert set(INDEXES) <= names
    store.close()


def test_indexes_are_dropped_for_a_load_only_where_the_store_asks(
    scenario: Scenario, store_factory: StoreFactory
) -> None:
    """Both stores drop their secondary indexes for a load into an empty store and build
    them once, sorted, near its end (a million random inserts cost more)."""
    generate(scenario, 300, seed=25)
    scenario.flush()
    store = store_factory()
    calls: list[str] = []
    for name in ("drop_indexes", "create_indexes"):
        real = getattr(store, name)
        setattr(store, name, lambda real=real, name=name: (calls.append(name), real()))
    runner = ProjectionRunner(scenario.source(), store, batch_size=100)
    runner.writer_process = False  # every call on this store object
    runner.run_once()
    expected = ["drop_indexes", "create_indexes"] if store.indexes_after_load else []
    assert calls == expected
    assert store.indexes_after_load == ("consents_key", "records_subject")


def test_a_sqlite_file_of_an_older_layout_is_emptied_and_rebuilt(
    scenario: Scenario, tmp_path: Path
) -> None:
    generate(scenario, 400, seed=24)
    scenario.flush()
    path = tmp_path / "rm.sqlite"
    store = SQLiteStore(path)
    rebuild(scenario.source(), store)
    expected = store.dump()
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=1")
    conn.close()
    store = SQLiteStore(path)
    runner = ProjectionRunner(scenario.source(), store)
    assert runner.position() == 0 and store.controllers() == []
    runner.run_once()
    assert store.dump() == expected
    store.close()


def test_a_reader_makes_small_chunks_at_both_ends_of_a_catch_up() -> None:
    """First chunks grow from a sixteenth of the batch, the last ones shrink by halves,
    none is larger than the batch, and the small ones add only a few chunks."""
    for chunk, total in ((50_000, 1_000_000), (200, 3000), (100, 99), (1, 10)):
        sizes, left = [], total
        while left > 0:
            sizes.append(prefetch.chunk_size(chunk, len(sizes), left))
            left -= sizes[-1]
        smallest = max(1, chunk // 16)
        assert min(sizes) >= 1 and max(sizes) <= chunk
        assert sizes[0] == min(smallest, max(1, total // 2))
        assert sizes[-1] <= smallest
        assert len(sizes) <= total // chunk + 12
    assert prefetch.chunk_size(50_000, 4, 1_000_000) == 50_000  # the middle: whole batches
    # Past the end as it stood at the start (the log grew meanwhile): whole batches.
    assert prefetch.chunk_size(50_000, 30, 0) == 50_000


def test_attaching_to_a_store_changes_nothing(store_factory: StoreFactory) -> None:
    """The writer process and the second applier attach to the runner's store
    (``open_spec``): they must not build again the indexes the runner dropped for a load
    (a shadowed name once made every SQLite attach run the whole DDL)."""
    store = store_factory()
    store.drop_indexes()
    attached = open_spec(store.writer_spec())
    attached.close()
    after = {r[0] for r in store._execute(  # type: ignore[attr-defined]
        "SELECT name FROM sqlite_master WHERE type='index'" if isinstance(store, SQLiteStore)
        else "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")}
    assert not set(store.indexes_after_load) & after
    store.create_indexes()
