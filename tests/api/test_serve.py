"""`auditledger serve` end to end: a real uvicorn process, `auditledger emit --url` with its
progress bar (on a pseudo-terminal), the checkpoint timer, and `verify` of a bundle."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from pathlib import Path

import httpx
import orjson
import pytest

from ledger.envelope import pseudonym
from tests.conftest import CLI, CONTROLLER, free_port, wait_until_healthy
from tests.conftest import cli_json as cli


@pytest.fixture
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    cli("init", "--data", str(data))
    cli("controller", "register", "--data", str(data), "--id", CONTROLLER, "--name", "B AS",
        "--country", "NO", "--tz", "Europe/Oslo")
    key = tmp_path / "crm.pem"
    pub = cli("keygen", "--out", str(key))["public_key"]
    cli("producer", "register", "--data", str(data), "--controller", CONTROLLER, "--id", "crm",
        "--public-key", pub, "--types", "consent.*")
    producer = cli("apikey", "create", "--data", str(data), "--role", "producer",
                   "--controller", CONTROLLER)["api_key"]
    auditor = cli("apikey", "create", "--data", str(data), "--role", "auditor",
                  "--controller", CONTROLLER)["api_key"]
    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--data", str(data), "--port", str(port), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url, proc, timeout=20)
    yield {"url": url, "producer": producer, "auditor": auditor, "key": key, "data": data}
    proc.terminate()
    proc.wait(timeout=10)


def run_on_pty(args: list[str]) -> tuple[int, str]:
    """Run on a pseudo-terminal, as a person at a terminal would (rich draws its bar)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(args, stdout=slave, stderr=slave)
    os.close(slave)
    err = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                chunk = b""
            if not chunk and proc.poll() is not None:
                break
            err += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    return proc.wait(), err.decode(errors="replace")


def test_emit_over_http_with_progress_bar(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    events = tmp_path / "events.jsonl"
    n = 1200
    events.write_bytes(b"".join(
        orjson.dumps({"type": "consent.given", "controller": CONTROLLER,
                      "subject": pseudonym(b"k" * 32, f"user{i}@example.org"),
                      "data": {"purposes": ["newsletter"], "method": "web_form",
                               "notice_version": "v1"}}) + b"\n" for i in range(n)))
    code, out = run_on_pty([*CLI, "emit", "--url", server["url"], "--api-key",
                                 server["producer"], "--key", str(server["key"]),
                                 "--producer", "crm", "--batch", "100", str(events)])
    assert code == 0, out
    assert out.count('"status":"accepted"') == n
    assert "emitting" in out  # the progress bar was drawn on the terminal

    # The checkpoint timer signs the new tree within about a second, unasked.
    headers = {"Authorization": f"Bearer {server['auditor']}"}
    deadline = time.monotonic() + 3
    while True:
        cp = httpx.get(f"{server['url']}/v1/controllers/{CONTROLLER}/checkpoint",
                       headers=headers).json()
        if cp["size"] == n + 2:
            break
        assert time.monotonic() < deadline, cp
        time.sleep(0.1)

    r = httpx.get(f"{server['url']}/v1/controllers/{CONTROLLER}/evidence", headers=headers)
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(r.content)
    res = subprocess.run([*CLI, "verify", str(bundle), "--log-key", cp["log_key"]],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr

    ready = httpx.get(f"{server['url']}/readyz").json()
    assert ready["status"] == "ready" and ready["projections"]["ok"]
    metrics = httpx.get(f"{server['url']}/metrics").text
    assert f'auditledger_events_total{{status="accepted"}} {n}' in metrics


def test_serve_signature_used_by_demo() -> None:
    import inspect

    from api.cli import serve

    params = inspect.signature(serve).parameters
    assert "data" in params and "port" in params
    assert all(p.default is not inspect.Parameter.empty for p in params.values())
