"""kill -9 during a stream of appends loses no acknowledged event and leaves no half-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ledger.service import Ledger
from ledger.signing import save_private_key
from ledger.verify import LogSource, verify_source
from tests.conftest import CONTROLLER, make_world

HERE = Path(__file__).parent


def test_kill_9_loses_no_acknowledged_event(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    key_file = tmp_path / "crm.pem"
    save_private_key(world.key, key_file)
    world.ledger.close()
    root = HERE.parent.parent
    acked: dict[str, int] = {}
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "crash_writer.py"), str(world.data_dir), str(key_file),
             CONTROLLER],
            stdout=subprocess.PIPE, text=True, cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        target = 300 + 137 * round_  # stop at a different point of a batch each time
        while len(acked) < target * (round_ + 1) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            eid, index = line.split()
            acked[eid] = int(index)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 300

    ledger = Ledger.open(world.data_dir, verifier_workers=0, clock=world.clock)
    try:
        stored = {e.event_id: e.index for e in ledger.log.events(controller=CONTROLLER)}
        missing = [eid for eid in acked if eid not in stored]
        assert not missing, f"{len(missing)} acknowledged events lost"
        assert all(stored[eid] == idx for eid, idx in acked.items())
        assert sorted(stored.values()) == list(range(len(stored))), "indexes dense"
        assert len(stored) - len(acked) < 100, "at most the in-flight batches were unacked"
        ledger.flush()
        report = verify_source(LogSource(ledger.log), [ledger.verifier_key])
        assert report.ok, report.problems[:3]
        (res,) = ledger.submit([world.event()])  # and the ledger carries on
        assert res.status == "accepted" and res.index == len(stored)
    finally:
        ledger.close()
