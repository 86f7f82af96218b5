"""The worker process (``auditledger projections run --follow``) neither dies on an event
it cannot interpret nor on a failed run, and records how it is doing beside its positions
(``projection_status``), where another process reads it (issue #14)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from projection_streams import CID, Scenario

from projections import queries, unprocessable
from projections.runner import STATUS_NAME
from projections.store import SQLiteStore

AUDITLEDGER = str(Path(sys.executable).parent / "auditledger")


def _until(what: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_the_worker_keeps_going_and_reports_its_state(scenario: Scenario,
                                                      tmp_path: Path) -> None:
    scenario.add("breach.aware", {"breach_id": "b-ok", "aware_at": "2026-03-01T10:00:00Z"},
                 "2026-03-01T10:00:00Z")
    bad = scenario.append_raw("breach.aware", {"breach_id": "b-bad",
                                               "aware_at": "2026-06-30T23:59:60Z"},
                              "2026-07-01T00:00:00Z")
    scenario.flush()
    path = tmp_path / "rm.sqlite"
    store = SQLiteStore(path)
    worker = subprocess.Popen([AUDITLEDGER, "projections", "run", "--data",
                               str(scenario.data_dir), "--store", str(path), "--follow"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        last = scenario.ledger.log.last_seq()

        def status() -> dict[str, Any] | None:
            return store.get_status(STATUS_NAME)

        st = _until(lambda: (s := status()) and s["positions"].get("log/0") == last and s)
        assert st["pid"] == worker.pid and st["failing"] is False
        assert st["last_error"] is None
        (f,) = queries.findings(store, CID, code=unprocessable.CODE)
        assert f["evidence"] == [bad] and "data.aware_at" in f["detail"]

        # a run that fails (a table the batch writes is gone): recorded, worker alive
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TABLE entities")
        scenario.add("breach.aware", {"breach_id": "b-2", "aware_at": "2026-03-02T10:00:00Z"},
                     "2026-03-02T10:00:00Z")
        scenario.flush()
        st = _until(lambda: (s := status()) and s["failing"] and s)
        assert "entities" in st["last_error"]["error"]
        assert st["last_error"]["positions"] == {"log/0": last}
        assert worker.poll() is None
        SQLiteStore(path).close()  # the table is back: the retry succeeds
        st = _until(lambda: (s := status()) and not s["failing"]
                    and s["positions"]["log/0"] == scenario.ledger.log.last_seq() and s,
                    timeout=60)
        assert "entities" in st["last_error"]["error"]  # kept, with its time
        assert worker.poll() is None
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        store.close()


def test_projections_rebuild_goes_past_events_it_cannot_interpret(scenario: Scenario,
                                                                  tmp_path: Path) -> None:
    bad = scenario.append_raw("rights_request.received", {
        "request_id": "r-bad", "right": "access", "received_at": "0000-01-01T00:00:00Z"},
        "0001-01-01T00:00:00+23:59")
    scenario.add("breach.aware", {"breach_id": "b-ok", "aware_at": "2026-03-01T10:00:00Z"},
                 "2026-03-01T10:00:00Z")
    scenario.flush()
    target = tmp_path / "rm.sqlite"
    out = []
    for _ in range(2):
        done = subprocess.run([AUDITLEDGER, "projections", "rebuild", "--data",
                               str(scenario.data_dir), "--store", str(target), "--json"],
                              capture_output=True, timeout=120)
        assert done.returncode == 0, done.stderr.decode()
        store = SQLiteStore(target)
        out.append(store.dump())
        (f,) = queries.findings(store, CID, code=unprocessable.CODE)
        assert f["evidence"] == [bad] and "occurred_at" in f["detail"]
        assert [b["breach_id"] for b in queries.breaches(store, CID)] == ["b-ok"]
        store.close()
    assert out[0] == out[1]
