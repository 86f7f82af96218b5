"""The signature pool survives the death of a worker (real processes, kill -9): the chunk
in flight and the next ones are answered, correctly, by a rebuilt pool; its workers exit
when the process that owns the pool dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ledger.encoding import b64url
from ledger.signing import generate_key, public_key_bytes
from ledger.verifier import Verifier
from tests import proctree

pytestmark = pytest.mark.slow


def _items(n: int) -> list[tuple[bytes, bytes, str]]:
    key = generate_key()
    pub = public_key_bytes(key)
    msgs = [f"m{i}".encode() for i in range(n)]
    items = [(pub, m, b64url(key.sign(m))) for m in msgs]
    items[7] = (pub, b"forged", items[7][2])  # one bad signature: answers are real
    return items


def _pool_pids(v: Verifier) -> list[int]:
    return [p for p, cmd in proctree.children(os.getpid()).items()
            if "multiprocessing.spawn" in cmd]


@pytest.mark.timeout(120)
def test_a_worker_killed_mid_chunk_is_replaced_and_the_chunk_answered() -> None:
    items = _items(6000)  # about half a second of checking on one core
    expected = [i != 7 for i in range(len(items))]
    v = Verifier(1, main_share=0.0)
    try:
        assert v.verify(items[:200]) == expected[:200]  # starts the worker
        (pid,) = _pool_pids(v)
        wait = v.start(items)  # one chunk, in flight in that worker
        time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
        assert wait() == expected  # rebuilt, resubmitted, answered
        assert v.rebuilds == 1 and "BrokenProcessPool" in (v.last_error or "")
        (fresh,) = _pool_pids(v)
        assert fresh != pid and not proctree.alive(pid)

        # Killed between batches: health says so until repair() (serve's timer) drops
        # the broken pool; the next batch needs no retry then.
        os.kill(fresh, signal.SIGKILL)
        assert not proctree.wait_dead([fresh], 5)
        deadline = time.monotonic() + 5
        while v.health()["ok"]:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        v.repair()
        assert v.health() == {"ok": True, "workers": 1, "alive": 0, "rebuilds": 2,
                              "last_error": "a signature worker died"}
        assert v.verify(items[:300]) == expected[:300]
        assert v.health()["alive"] == 1
    finally:
        v.close()


ORPHAN = """
import sys, time
from ledger.verifier import Verifier
from tests.core.test_verifier_pool import _items
if __name__ == "__main__":
    v = Verifier(2, main_share=0.0)
    v.verify(_items(400))
    print("ready", flush=True)
    time.sleep(600)
"""


@pytest.mark.timeout(120)
def test_pool_workers_and_tracker_exit_when_their_parent_is_killed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "owner.py"
    script.write_text(ORPHAN)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                             text=True, cwd=root, env={**os.environ, "PYTHONPATH": root})
    try:
        assert owner.stdout is not None and owner.stdout.readline().strip() == "ready"
        kids = proctree.descendants(owner.pid)
        assert sum("multiprocessing.spawn" in c for c in kids.values()) == 2, kids
        assert any("resource_tracker" in c for c in kids.values()), kids
    finally:
        owner.kill()
        owner.wait()
    assert not proctree.wait_dead(list(kids), 5), kids
