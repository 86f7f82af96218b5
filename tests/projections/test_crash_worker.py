"""kill -9 of the projection worker mid-stream, restart: same read models, no event twice;
and one worker per store: a second one refuses while the first runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import StoreFactory
from projection_streams import CID, Scenario, generate

from projections.runner import rebuild
from projections.store import SQLiteStore, open_store
from tests.proctree import alive as _alive
from tests.proctree import children as _children

AUDITLEDGER = str(Path(sys.executable).parent / "auditledger")


def _worker(data: Path, store: str, follow: bool) -> subprocess.Popen[bytes]:
    args = [AUDITLEDGER, "projections", "run", "--data", str(data), "--store", store,
            "--batch-size", "25"]
    return subprocess.Popen(args + (["--follow"] if follow else []),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _target(store_factory: StoreFactory) -> str:
    """The address a worker process is given for a new store of the test's backend."""
    probe = store_factory()
    target = str(probe.path) if isinstance(probe, SQLiteStore) else probe.dsn
    if not isinstance(probe, SQLiteStore):
        sep = "&" if "?" in probe.dsn else "?"
        target = f"{probe.dsn}{sep}options=-csearch_path%3D{probe.schema}"
    probe.close()
    return target


@pytest.mark.slow
def test_kill_9_mid_stream_and_restart_gives_the_same_read_models(
    scenario: Scenario, store_factory: StoreFactory, tmp_path: Path
) -> None:
    generate(scenario, 12_000, seed=3)
    scenario.flush()
    total = scenario.ledger.log.last_seq()
    target = _target(store_factory)

    # Each kill lands after the worker committed something new (polled), plus a little:
    # fixed sleeps stopped landing mid-stream once a replay got faster than they were.
    watch = open_store(target)
    positions = []
    helpers: list[dict[int, str]] = []  # per kill: the worker's child processes
    for extra in (0.0, 0.05, 0.02, 0.1):
        before = watch.max_tracking_id("log/0") or 0
        p = _worker(scenario.data_dir, target, follow=True)
        deadline = time.monotonic() + 60
        while (watch.max_tracking_id("log/0") or 0) == before and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(extra)
        helpers.append(_children(p.pid))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        positions.append(watch.max_tracking_id("log/0") or 0)
        # Its reader, second applier and writer processes die with it (nothing goes on
        # writing behind the restarted worker).
        deadline = time.monotonic() + 5
        while any(_alive(c) for c in helpers[-1]) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not any(_alive(c) for c in helpers[-1]), helpers[-1]
        if positions[-1] >= total:
            break
    watch.close()
    done = _worker(scenario.data_dir, target, follow=False)
    _, err = done.communicate(timeout=300)
    assert done.returncode == 0, err.decode()

    live = open_store(target)
    assert live.max_tracking_id("log/0") == total
    stats = live.entity("stats", CID, "events")
    assert stats is not None
    log_count = sum(1 for e in scenario.ledger.log.events() if e.controller == CID)
    assert stats["total"] == log_count  # nothing applied twice, nothing skipped
    fresh = store_factory()
    rebuild(scenario.source(), fresh)
    assert live.dump() == fresh.dump()
    live.close()
    # The kills really landed mid-stream: some restarts resumed from a partial position,
    # and some found the worker committing through its writer process.
    assert any(0 < p < total for p in positions), positions
    assert any("projections.writer" in c for h in helpers for c in h.values()), helpers
    assert any("projections.shard" in c for h in helpers for c in h.values()), helpers


def test_a_second_worker_on_the_same_store_refuses(
    scenario: Scenario, store_factory: StoreFactory, tmp_path: Path
) -> None:
    generate(scenario, 200, seed=5)
    scenario.flush()
    target = _target(store_factory)
    first = _worker(scenario.data_dir, target, follow=True)
    try:
        watch = open_store(target)
        deadline = time.monotonic() + 60
        while (watch.max_tracking_id("log/0") or 0) < scenario.ledger.log.last_seq():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        watch.close()
        second = _worker(scenario.data_dir, target, follow=True)
        _, err = second.communicate(timeout=60)
        assert second.returncode == 1
        line = err.decode().strip()
        assert line.startswith(f"error: another projections worker (pid {first.pid}) holds ")
        assert "\n" not in line
        # Another store on the same data directory is another lock.
        other = _worker(scenario.data_dir, _target(store_factory), follow=False)
        _, err = other.communicate(timeout=120)
        assert other.returncode == 0, err.decode()
    finally:
        first.kill()
        first.wait()
    # A worker killed with -9 leaves the lock file, never the lock: the next one starts.
    done = _worker(scenario.data_dir, target, follow=False)
    _, err = done.communicate(timeout=120)
    assert done.returncode == 0, err.decode()
