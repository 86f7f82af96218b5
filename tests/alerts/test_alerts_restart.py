"""``kill -9`` of ``auditledger serve`` (API + projections + alert scheduler + delivery)
while alerts are pending: after a restart every alert reaches the webhook — the one that
fell due while the process was dead as soon as it is back, later ones on time (< 1 s) —
and none arrives twice."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ledger.clock import format_rfc3339, parse_rfc3339
from ledger.envelope import complete
from ledger.signing import load_private_key
from tests.alerts.alerting import Receiver
from tests.conftest import CLI, free_port
from tests.conftest import cli_json as cli

C = "NO-921119224"




class Server:
    def __init__(self, data: Path, port: int, log: Path) -> None:
        self.data, self.port, self.log = data, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        env = {**os.environ, "AUDITLEDGER_ALERT_RETRY_BASE_S": "0.2",
               "AUDITLEDGER_ALERT_RETRY_MAX_DELAY_S": "1"}
        t0 = time.monotonic()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*CLI, "serve", "--data", str(self.data), "--port", str(self.port), "--json"],
                stdout=log, stderr=log, env=env)
        while True:
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    return time.monotonic() - t0
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() - t0 < 30, "server did not start"
            time.sleep(0.05)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def setup(tmp_path: Path, receiver: Receiver) -> Iterator[dict[str, Any]]:
    data = tmp_path / "data"
    admin = cli("init", "--data", str(data))["admin_api_key"]
    cli("controller", "register", "--data", str(data), "--id", C, "--name", "B AS",
        "--country", "NO", "--tz", "Europe/Oslo")
    key = tmp_path / "soc.pem"
    pub = cli("keygen", "--out", str(key))["public_key"]
    cli("producer", "register", "--data", str(data), "--controller", C, "--id", "soc",
        "--public-key", pub, "--types", "breach.*")
    producer = cli("apikey", "create", "--data", str(data), "--role", "producer",
                   "--controller", C)["api_key"]
    server = Server(data, free_port(), tmp_path / "serve.log")
    yield {"data": data, "admin": admin, "producer": producer, "key": load_private_key(key),
           "server": server}
    server.stop()


@pytest.mark.slow
def test_kill_9_with_pending_alerts(setup: dict[str, Any], receiver: Receiver) -> None:
    server: Server = setup["server"]
    print(f"\nserve started in {server.start():.2f} s")
    r = httpx.post(f"{server.url}/v1/controllers/{C}/webhooks", json={"url": receiver.url},
                   headers={"Authorization": f"Bearer {setup['admin']}"})
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"]

    t0 = datetime.now(UTC)
    offsets = {"k0": 3, "k1": 6, "k2": 15, "k3": 17}  # 48 h thresholds, seconds from t0
    envs = []
    for bid, s in offsets.items():
        aware = t0 - timedelta(hours=48) + timedelta(seconds=s)
        envs.append(complete({"type": "breach.aware", "controller": C,
                              "data": {"breach_id": bid, "aware_at": format_rfc3339(aware)}},
                             setup["key"], "soc"))
    res = httpx.post(f"{server.url}/v1/events", content=orjson.dumps(envs),
                     headers={"Authorization": f"Bearer {setup['producer']}",
                              "Content-Type": "application/json"}).json()
    assert {x["status"] for x in res} == {"accepted"}, res

    def at(s: float) -> None:
        time.sleep(max(0.0, (t0 + timedelta(seconds=s) - datetime.now(UTC)).total_seconds()))

    at(offsets["k0"] + 0.8)
    assert [d["doc"]["case"] for d in receiver.by_id.values()] == ["k0"]
    server.kill9()  # k1, k2, k3 pending in the outbox
    at(offsets["k1"] + 1.5)  # k1 falls due while the process is dead
    assert len(receiver.by_id) == 1
    back = datetime.now(UTC)
    print(f"restarted in {server.start():.2f} s")
    at(offsets["k3"] + 2)
    time.sleep(1.0)
    counts = Counter(receiver.ids())
    assert set(counts) == {d["doc"]["id"] for d in receiver.by_id.values()}
    assert sorted(d["doc"]["case"] for d in receiver.by_id.values()) == ["k0", "k1", "k2", "k3"]
    assert set(counts.values()) == {1}, counts  # none twice
    for d in receiver.by_id.values():
        due = parse_rfc3339(d["doc"]["due_at"]).timestamp()
        late = d["at"] - due
        print(f"{d['doc']['case']}: received {late * 1000:.0f} ms after its threshold")
        if d["doc"]["case"] == "k1":  # due while dead: delivered soon after the restart
            assert d["at"] - back.timestamp() < 5
        else:
            assert -0.01 <= late < 1.0
    # the same four on the live stream of a real server, resumable by Last-Event-ID
    auditor = cli("apikey", "create", "--data", str(setup["data"]), "--role", "auditor",
                  "--controller", C)["api_key"]
    hdrs = {"Authorization": f"Bearer {auditor}"}
    with httpx.stream("GET", f"{server.url}/v1/alerts/stream", params={"after": 0, "limit": 4},
                      headers=hdrs, timeout=10) as resp:
        ids = [line[4:] for line in resp.iter_lines() if line.startswith("id: ")]
    assert ids == ["1", "2", "3", "4"]
    with httpx.stream("GET", f"{server.url}/v1/alerts/stream",
                      params={"idle_timeout": 1}, timeout=10,
                      headers={**hdrs, "Last-Event-ID": "2"}) as resp:
        assert [line for line in resp.iter_lines() if line.startswith("id: ")] == [
            "id: 3", "id: 4"]
    listed = cli("alerts", "list", "--data", str(setup["data"]), "--state", "emitted")["items"]
    assert sorted(a["case"] for a in listed) == ["k0", "k1", "k2", "k3"]
    assert all(a["deliveries"][0]["state"] == "delivered" for a in listed)
    upcoming = cli("alerts", "upcoming", "--data", str(setup["data"]))["items"]
    assert [a["threshold"] for a in upcoming][:4] == ["60h"] * 4
    assert cli("alerts", "dead", "--data", str(setup["data"]))["items"] == []


def test_alerts_cli_bad_input(tmp_path: Path) -> None:
    r = subprocess.run([*CLI, "alerts", "list", "--data", str(tmp_path / "nope"), "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "not an auditledger data directory" in r.stderr
    cli("init", "--data", str(tmp_path / "d"))
    r = subprocess.run([*CLI, "alerts", "list", "--data", str(tmp_path / "d"), "--state", "x"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown alert state" in r.stderr
    assert cli("alerts", "upcoming", "--data", str(tmp_path / "d")) == {"items": []}
