"""kill -9 against a real ``auditledger serve`` and its children (docs/deployment.md):

- serve itself: none of its children outlives it, a restart runs exactly one projections
  worker, and no event acknowledged over HTTP during the kills is lost;
- its projections worker: serve restarts it, /readyz is 503 while it is dead, then 200,
  and the read models catch up;
- a signature-pool worker: the next batches are still answered, /readyz shows the rebuild.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from ledger.service import Ledger
from tests import proctree
from tests.conftest import CLI, CONTROLLER
from tests.serving import Producer, Serve, make_data, verify_data

pytestmark = pytest.mark.slow

WORKER = "projections run"
POOL = "multiprocessing.spawn"
TRACKER = "multiprocessing.resource_tracker"


def _wait_for_children(serve: Serve, needles: tuple[str, ...],
                       timeout: float = 30) -> dict[int, str]:
    """serve's descendants, once one of them matches each of ``needles``."""
    deadline = time.monotonic() + timeout
    while True:
        tree = proctree.descendants(serve.pid)
        if all(any(n in cmd for cmd in tree.values()) for n in needles):
            return tree
        assert time.monotonic() < deadline, (needles, tree)
        time.sleep(0.05)


def _wait_for_acks(producer: Producer, n: int, serve: Serve, timeout: float = 30) -> None:
    """Until ``n`` more events are acknowledged."""
    target = len(producer.acked) + n
    deadline = time.monotonic() + timeout
    while len(producer.acked) < target:
        assert time.monotonic() < deadline, serve.log_tail()
        time.sleep(0.02)


def _wait_for_lock_holder(data: Path, pids: set[int], serve: Serve) -> None:
    from ledger.config import Config
    from projections.worker_lock import lock_path

    path = lock_path(data, str(Config(data_dir=data).readmodel_db))
    deadline = time.monotonic() + 60
    while True:
        text = path.read_text().strip() if path.exists() else ""
        if text.isdigit() and int(text) in pids:
            return
        assert time.monotonic() < deadline, (text, pids, serve.log_tail())
        time.sleep(0.05)


def _workers_on(data: Path) -> dict[int, str]:
    return proctree.matching(WORKER, f"--data {data}")


@pytest.mark.timeout(240)
def test_kill_9_of_serve_leaves_no_child_and_loses_no_acknowledged_event(
    tmp_path: Path,
) -> None:
    world = make_data(tmp_path)
    data = world["data"]
    serve = Serve(data).start()
    producer = Producer(serve.url, world["producer"], world["key"]).run(size=50)
    orphans: list[dict[int, str]] = []
    try:
        for _ in range(5):  # the red team's five kills
            # Kill while this serve acknowledges events, once it has every kind of
            # child: the worker (and its helpers), a signature worker and
            # multiprocessing's resource tracker.
            _wait_for_acks(producer, 100, serve)
            tree = _wait_for_children(serve, (WORKER, POOL, TRACKER))
            os.kill(serve.pid, signal.SIGKILL)
            assert serve.proc is not None
            serve.proc.wait(timeout=10)
            orphans.append({p: tree[p] for p in proctree.wait_dead(list(tree), 5)})
            serve.start()
        tree = _wait_for_children(serve, (WORKER,))
        # Exactly one worker on this data directory, and it is this serve's.
        workers = _workers_on(data)
        assert len(workers) == 1, workers
        assert set(workers) <= set(tree)
        # Once that worker holds the store's lock (a loaded machine may take seconds to
        # get it that far after the restart), a second worker on the same store refuses
        # at once, with one line.
        _wait_for_lock_holder(data, set(workers), serve)
        second = subprocess.run([*CLI, "projections", "run", "--data", str(data), "--follow"],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert second.stderr.startswith("error: another projections worker (pid "), second
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
        _wait_for_acks(producer, 200, serve)  # ingest works after the last restart
    finally:
        producer.stop()
    assert not any(orphans), orphans
    assert producer.failures >= 1  # the kills really hit requests in flight
    doc = serve.wait_ready(60, lag0=True)  # the read models caught up
    assert doc["projections"]["worker"]["alive"] is True
    tree = proctree.descendants(serve.pid)
    serve.stop()
    assert not proctree.wait_dead(list(tree), 10), tree  # a clean stop reaps them too

    ledger = Ledger.open(data, verifier_workers=0)
    try:
        stored = {e.event_id for e in ledger.log.events(controller=CONTROLLER)}
    finally:
        ledger.close()
    lost = producer.acked - stored
    assert not lost, f"{len(lost)} of {len(producer.acked)} acknowledged events lost"
    assert len(producer.acked) >= 400
    verify_data(data)


@pytest.mark.timeout(180)
def test_killed_projections_worker_is_restarted_and_readyz_follows(tmp_path: Path) -> None:
    world = make_data(tmp_path)
    serve = Serve(world["data"]).start()
    producer = Producer(serve.url, world["producer"], world["key"])
    try:
        for _ in range(4):
            producer.post(producer.batch(50))
        first = serve.wait_ready(60, lag0=True)["projections"]["worker"]
        assert first["alive"] and first["restarts"] == 0

        os.kill(first["pid"], signal.SIGKILL)
        seen_dead = None
        deadline = time.monotonic() + 10
        while seen_dead is None:  # the backoff (1 s) leaves time to see it
            code, doc = serve.ready()
            if code == 503:
                seen_dead = doc
            assert time.monotonic() < deadline, doc
            time.sleep(0.02)
        dead = seen_dead["projections"]
        assert seen_dead["status"] == "not_ready" and dead["ok"] is False
        assert dead["worker"]["alive"] is False and dead["worker"]["pid"] is None
        assert dead["worker"]["last_exit"] == -signal.SIGKILL

        again = serve.wait_ready(30)["projections"]["worker"]
        assert again["alive"] and again["restarts"] == 1 and again["pid"] != first["pid"]
        assert not proctree.alive(first["pid"])
        # Events written while it was down and after are projected by the new worker.
        last = producer.batch(50)
        producer.post(last)
        serve.wait_ready(60, lag0=True)
        r = httpx.get(f"{serve.url}/v1/controllers/{CONTROLLER}/consents/{last[-1]['subject']}",
                      headers={"Authorization": f"Bearer {world['admin']}"}, timeout=10)
        assert r.status_code == 200, r.text
        assert "newsletter" in r.text
        assert len(_workers_on(world["data"])) == 1
    finally:
        serve.stop()


@pytest.mark.timeout(180)
def test_killed_signature_worker_is_replaced_and_batches_still_answer(tmp_path: Path) -> None:
    world = make_data(tmp_path)
    serve = Serve(world["data"]).start()
    producer = Producer(serve.url, world["producer"], world["key"])
    try:
        producer.post(producer.batch(50))
        tree = _wait_for_children(serve, (POOL,))
        pool = [p for p, cmd in tree.items() if POOL in cmd]
        assert serve.ready()[1]["signatures"]["rebuilds"] == 0
        os.kill(pool[0], signal.SIGKILL)
        assert not proctree.wait_dead(pool[:1], 5)

        statuses = []
        for _ in range(12):  # the red team's 12 batches of 50: 9 of them answered 500
            statuses.extend(r["status"] for r in producer.post(producer.batch(50)))
        assert statuses == ["accepted"] * 600
        doc = serve.wait_ready(10)
        sig = doc["signatures"]
        assert sig["ok"] and sig["rebuilds"] >= 1 and sig["last_error"], sig
        assert sig["alive"] >= 1  # a new worker answers
        fresh = [p for p, cmd in proctree.descendants(serve.pid).items() if POOL in cmd]
        assert fresh and pool[0] not in fresh
    finally:
        serve.stop()
