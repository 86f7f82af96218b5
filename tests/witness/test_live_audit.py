"""End to end: ``auditledger serve`` configured with a real witness, the cosigned route,
and ``auditledger verify --url`` remembering checkpoints across visits.

Ledger B is the split view of ledger A: the same log key and the same controller id,
another history. The witness, which saw A, refuses B's checkpoints (and B's /readyz and
/metrics say so); an auditor who remembers A's checkpoint is told of the rollback or fork
when shown B, with both checkpoints named.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ledger.sequencer import origin
from tests.conftest import CLI, CONTROLLER, cli_json
from tests.serving import Producer, Serve, make_data
from tests.witness.conftest import Witness

ORIGIN = origin(CONTROLLER)


def _configure(data: Path, witness: Witness) -> None:
    cfg = orjson.loads((data / "config.json").read_bytes())
    cfg["witnesses"] = [{"url": witness.url, "vkey": witness.vkey}]
    (data / "config.json").write_bytes(orjson.dumps(cfg))


def _auditor(data: Path) -> str:
    return cli_json("apikey", "create", "--data", str(data), "--role", "auditor",
                    "--controller", CONTROLLER)["api_key"]


def _verify(url: str, key: str, state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "verify", "--url", url, "--api-key", key, "--controller",
                           CONTROLLER, "--state", str(state), *extra],
                          capture_output=True, text=True, timeout=120)


def _cosigned(url: str, key: str, size: int, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{url}/v1/controllers/{CONTROLLER}/checkpoint/cosigned",
                      headers={"Authorization": f"Bearer {key}"}, timeout=10)
        if r.status_code == 200 and r.json()["size"] >= size:
            return r.json()
        assert time.monotonic() < deadline, (r.status_code, r.text)
        time.sleep(0.1)


def _split_view(tmp: Path, a: Path) -> dict[str, Any]:
    """Ledger B: A's log key, the same controller, its own (shorter) history."""
    data = tmp / "data"
    cli_json("init", "--data", str(data))
    for name in ("log.pem", "log.pub"):
        shutil.copy(a / "keys" / name, data / "keys" / name)
    cli_json("controller", "register", "--data", str(data), "--id", CONTROLLER,
             "--name", "B AS", "--country", "NO", "--tz", "Europe/Oslo")
    return {"data": data}


@pytest.fixture
def ledger_a(tmp_path: Path, witness: Witness) -> Any:
    a = make_data(tmp_path / "a")
    _configure(a["data"], witness)
    witness.add_log(ORIGIN, (a["data"] / "keys" / "log.pub").read_text().strip())
    serve = Serve(a["data"]).start()
    yield a, serve
    serve.stop()


def test_cosigned_checkpoints_and_remembered_audits(tmp_path: Path, witness: Witness,
                                                    ledger_a: Any) -> None:
    a, serve = ledger_a
    auditor = _auditor(a["data"])
    producer = Producer(serve.url, a["producer"], a["key"])
    producer.post(producer.batch(20))
    doc = _cosigned(serve.url, auditor, 20)
    assert doc["note"].endswith("".join(doc["cosignatures"]))
    assert doc["cosignatures"][0].startswith("— witness.test/w1 ")
    state = tmp_path / "auditor" / "state.json"

    # First visit: the log key is taken on first use (a warning says so), 1 cosignature.
    res = _verify(serve.url, auditor, state, "--witness", witness.vkey, "--quorum", "1",
                  "--json")
    assert res.returncode == 0, res.stderr
    first = orjson.loads(res.stdout)
    assert first["ok"] and first["problems"] == []
    assert first["controllers"] == {CONTROLLER: {"size": first["size"], "root": first["root"]}}
    assert first["cosigned_by"] == ["witness.test/w1"] and first["previous"] == []
    assert "on first use" in res.stderr
    remembered = orjson.loads(state.read_bytes())["logs"][ORIGIN]
    assert remembered["checkpoints"][0]["size"] == first["size"]

    # Second visit after more events: consistency proved from the remembered checkpoint.
    producer.post(producer.batch(7))
    _cosigned(serve.url, auditor, first["size"] + 7)
    res = _verify(serve.url, auditor, state, "--witness", witness.vkey, "--quorum", "1")
    assert res.returncode == 0, res.stderr
    assert f"consistent with size {first['size']}" in res.stdout
    assert "first use" not in res.stderr  # the remembered key is used now

    # A quorum the witness cannot meet fails, and a wrong --witness key gives 0 of 1.
    other = Witness(tmp_path / "w2").vkey
    res = _verify(serve.url, auditor, state, "--witness", other, "--quorum", "1")
    assert res.returncode == 1 and "0 of 1 required cosignatures" in res.stderr, res.stderr
    res = _verify(serve.url, auditor, state, "--quorum", "1")
    assert res.returncode == 2 and "--witness" in res.stderr  # bad input: one line
    assert len(res.stderr.strip().splitlines()) == 1

    # /readyz and /metrics show the witness as healthy.
    _, ready = serve.ready()
    assert ready["witnesses"][0]["ok"] and ready["witnesses"][0]["failures"] == 0
    assert ready["witnesses"][0]["cosigned"][CONTROLLER] >= first["size"] + 7
    metrics = httpx.get(f"{serve.url}/metrics").text
    assert 'auditledger_witness_ok{witness="witness.test/w1"} 1.0' in metrics


def test_split_view_is_refused_by_the_witness_and_named_by_the_auditor(
        tmp_path: Path, witness: Witness, ledger_a: Any) -> None:
    a, serve_a = ledger_a
    auditor_a = _auditor(a["data"])
    producer = Producer(serve_a.url, a["producer"], a["key"])
    producer.post(producer.batch(10))
    size_a = _cosigned(serve_a.url, auditor_a, 10)["size"]
    state = tmp_path / "state-a.json"
    assert _verify(serve_a.url, auditor_a, state).returncode == 0
    seen_a = orjson.loads(state.read_bytes())["logs"][ORIGIN]["checkpoints"][0]

    b = _split_view(tmp_path / "b", a["data"])
    _configure(b["data"], witness)
    auditor_b = _auditor(b["data"])
    serve_b = Serve(b["data"]).start()
    try:
        # The witness holds A's larger tree: B's checkpoint is refused, and B says so.
        deadline = time.monotonic() + 30
        while not (w := serve_b.ready()[1]["witnesses"][0])["failures"]:
            assert time.monotonic() < deadline, w
            time.sleep(0.1)
        assert not w["ok"] and "refused (HTTP 409)" in w["last_error"], w
        assert f"cosigned size {size_a}" in w["last_error"]
        assert 'auditledger_witness_ok{witness="witness.test/w1"} 0.0' in httpx.get(
            f"{serve_b.url}/metrics").text
        r = httpx.get(f"{serve_b.url}/v1/controllers/{CONTROLLER}/checkpoint/cosigned",
                      headers={"Authorization": f"Bearer {auditor_b}"})
        assert r.status_code == 404 and r.json()["code"] == "no_cosigned_checkpoint"
        res = _verify(serve_b.url, auditor_b, tmp_path / "fresh.json", "--witness",
                      witness.vkey, "--quorum", "1")
        assert res.returncode == 1 and "no_cosigned_checkpoint" in res.stderr, res.stderr
        assert not (tmp_path / "fresh.json").exists()

        # The auditor who remembers A is shown B's smaller tree: a rollback, both named.
        before = state.read_bytes()
        res = _verify(serve_b.url, auditor_b, state, "--json")
        assert res.returncode == 1, res.stderr
        line = res.stderr.strip()
        assert len(line.splitlines()) == 1 and line.startswith("error: rollback: ")
        (problem,) = orjson.loads(res.stdout)["problems"]
        assert problem["problem"] == "rollback" and problem["controller"] == CONTROLLER
        size_b = problem["detail"].split("size ")[1].split(" ")[0]
        assert f"size {seen_a['size']} root {seen_a['root']}" in line and f"size {size_b} " in line
        assert state.read_bytes() == before  # a failed audit does not move the memory

        # An auditor who first saw B, then A: same size prefix, other history -> fork.
        state_b = tmp_path / "state-b.json"
        assert _verify(serve_b.url, auditor_b, state_b).returncode == 0
        res = _verify(serve_a.url, auditor_a, state_b)
        assert res.returncode == 1 and "error: fork: " in res.stderr, res.stderr
        assert f"size {size_b} " in res.stderr and f"size {size_a} " in res.stderr
    finally:
        serve_b.stop()
