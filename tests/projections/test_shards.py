"""A catch-up split between two appliers (``projections.shard``, routed by
``projections.routing``) gives the same read models as one applier."""

from __future__ import annotations

import orjson
import pytest
from conftest import StoreFactory
from projection_streams import Scenario, generate

from projections import routing
from projections.projection import HANDLERS
from projections.runner import ProjectionRunner, rebuild
from projections.shard import ShardProcess
from projections.writer import WriterError, WriterProcess


def test_every_event_type_with_a_handler_is_routed() -> None:
    """A new handler must say what its state hangs on (or that it reads only
    administration state): otherwise a split catch-up could apply its events apart."""
    classified = routing.BROADCAST | set(routing.KEYS) | routing.ANYWHERE
    assert set(HANDLERS) <= classified
    assert not routing.BROADCAST & set(routing.KEYS)


def _shard_of(seq: int, type_: str, body: bytes) -> int | None:
    """0 or 1, or None for both."""
    mine, other = routing.split([(seq, type_, "NO-1", body)])
    return None if mine and other else (0 if mine else 1)


def test_routing_keeps_each_key_on_one_applier() -> None:
    def body(**env: object) -> bytes:
        return orjson.dumps(env)

    s = "psn:" + "a" * 43
    given = _shard_of(1, "consent.given", body(subject=s, data={}))
    assert _shard_of(2, "processing.performed", body(subject=s, data={})) == given
    assert _shard_of(3, "subject.erased", body(subject=s, data={"request_id": "x"})) == given
    # a request's events follow its id, not the subject named in its receipt
    assert {_shard_of(n, t, body(subject=s if n == 4 else None, data={"request_id": "r9"}))
            for n, t in ((4, "rights_request.received"), (5, "rights_request.fulfilled"),
                         (6, "rights_request.refused"))} in ({0}, {1})
    assert _shard_of(7, "controller.registered", body(data={})) is None
    seen = {_shard_of(n, "consent.given", body(subject=f"psn:{n:043d}", data={}))
            for n in range(40)}
    assert seen == {0, 1}


@pytest.mark.parametrize("seed", [41, 42, 43])
def test_a_split_catch_up_equals_one_applier(
    scenario: Scenario, store_factory: StoreFactory, seed: int
) -> None:
    generate(scenario, 3000, seed=seed)
    scenario.flush()
    split = store_factory()
    started: list[ShardProcess] = []
    real = ShardProcess.__init__

    def spy(self: ShardProcess, *a: object) -> None:
        real(self, *a)  # type: ignore[arg-type]
        started.append(self)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ShardProcess, "__init__", spy)
        n = ProjectionRunner(scenario.source(), split, batch_size=150).run_once()
    assert len(started) == 1 and started[0].proc.returncode == 0
    one = store_factory()
    runner = ProjectionRunner(scenario.source(), one, batch_size=150)
    runner.split = False
    assert runner.run_once() == n == scenario.ledger.log.last_seq()
    assert split.dump() == one.dump()


def test_a_split_catch_up_into_a_store_that_holds_a_prefix(
    scenario: Scenario, store_factory: StoreFactory
) -> None:
    """Neither applier's caches are the truth then: both read what they miss from the
    store; and with caches dropped after every batch, each waits for the batches it has
    handed out to be committed before it reads."""
    generate(scenario, 1200, seed=44)
    scenario.flush()
    split = store_factory()
    ProjectionRunner(scenario.source(), split, batch_size=400).run_once()
    generate(scenario, 2500, seed=45)
    scenario.flush()
    runner = ProjectionRunner(scenario.source(), split, batch_size=150)
    runner.projection.batch.cache_limit = 40
    runner.run_once()
    fresh = store_factory()
    rebuild(scenario.source(), fresh)
    assert split.dump() == fresh.dump()


def test_a_second_applier_that_dies_mid_catch_up_leaves_a_store_that_converges(
    scenario: Scenario, store_factory: StoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after a few batches: the writer refuses the next batch that needs its share
    (``WriterError``), or the reader, finding its pipe closed, stops and the runner
    applies the rest itself. Either way no half batch is committed, and a retry
    converges on the rebuild."""
    generate(scenario, 4000, seed=46)
    scenario.flush()
    store = store_factory()
    shards: list[ShardProcess] = []
    real_started = ShardProcess.started
    monkeypatch.setattr(ShardProcess, "started",
                        lambda self: (shards.append(self), real_started(self))[1])
    real_commit = WriterProcess.commit
    calls: list[int] = []

    def commit_then_kill(self: WriterProcess, *a: object) -> object:
        calls.append(1)
        if len(calls) == 4:
            shards[0].proc.kill()
        return real_commit(self, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(WriterProcess, "commit", commit_then_kill)
    runner = ProjectionRunner(scenario.source(), store, batch_size=150)
    try:
        runner.run_once()
    except WriterError as e:
        assert "second applier" in str(e)
    assert shards and shards[0].proc.returncode is not None
    monkeypatch.undo()
    ProjectionRunner(scenario.source(), store, batch_size=150).run_once()
    assert store.max_tracking_id("log/0") == scenario.ledger.log.last_seq()
    fresh = store_factory()
    rebuild(scenario.source(), fresh)
    assert store.dump() == fresh.dump()
