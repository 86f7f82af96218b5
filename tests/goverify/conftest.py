"""The independent Go verifier (tests/goverify), built once per session, and a real
``auditledger serve`` on loopback with a log long enough for full and partial tiles.

``go`` missing is a failure, never a skip: CI must run this check (scripts/bootstrap.sh
--full installs Go where it is absent).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import CONTROLLER, OTHER, cli_json
from tests.serving import Producer, Serve, make_data

SRC = Path(__file__).resolve().parent
BINARY = SRC.parents[1] / "build" / "goverify"


def build() -> Path:
    """``go build`` the verifier into build/goverify (modules from the Go module proxy,
    pinned by go.sum; the build cache makes a rebuild take well under a second)."""
    go = shutil.which("go") or ("/usr/local/go/bin/go"
                                if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        pytest.fail("`go` is not installed: the independent verifier cannot be built "
                    "(scripts/bootstrap.sh --full installs it)", pytrace=False)
    BINARY.parent.mkdir(exist_ok=True)
    res = subprocess.run([go, "build", "-mod=readonly", "-o", str(BINARY), "."], cwd=SRC,
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "GOFLAGS": "-mod=readonly"})
    if res.returncode != 0:
        pytest.fail(f"go build failed:\n{res.stderr[-2000:]}", pytrace=False)
    return BINARY


@pytest.fixture(scope="session")
def goverify() -> Path:
    return build()


@dataclass
class Run:
    code: int
    report: dict[str, Any]
    stderr: str

    @property
    def problems(self) -> list[str]:
        return [p["problem"] for p in self.report.get("problems", [])]


def run(binary: Path, *args: str | Path, env: dict[str, str] | None = None) -> Run:
    res = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                         timeout=300, env=env)
    report = orjson.loads(res.stdout) if res.stdout.strip() else {}
    return Run(res.returncode, report, res.stderr)


@dataclass
class Live:
    serve: Serve
    log_key: str
    auditor: str  # may see CONTROLLER only
    other_auditor: str  # may see OTHER only
    producer: Producer
    data: Path



@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """``auditledger serve`` with 600 consent events of CONTROLLER (two full level-0
    tiles and a partial one, a partial level-1 tile) and a second tenant."""
    tmp = tmp_path_factory.mktemp("goverify")
    made = make_data(tmp)
    data = made["data"]
    log_key = (data / "keys" / "log.pub").read_text().strip()
    cli_json("controller", "register", "--data", str(data), "--id", OTHER, "--name", "A ApS",
             "--country", "DK", "--tz", "Europe/Copenhagen")
    keys = {}
    for who, ctl in (("auditor", CONTROLLER), ("other", OTHER)):
        keys[who] = cli_json("apikey", "create", "--data", str(data), "--role", "auditor",
                             "--controller", ctl)["api_key"]
    serve = Serve(data).start()
    producer = Producer(serve.url, made["producer"], made["key"])
    for _ in range(3):
        results = producer.post(producer.batch(200))
        assert all(r["status"] == "accepted" for r in results), results[:2]
    # Checkpoints are signed within a second of events arriving (every test reads them).
    deadline = time.monotonic() + 15
    while int(httpx.get(f"{serve.url}/v1/controllers/{CONTROLLER}/tlog/checkpoint",
                        headers={"Authorization": f"Bearer {keys['auditor']}"},
                        timeout=30).text.split("\n")[1]) < 602:  # 2 admin + 600 events
        assert time.monotonic() < deadline, "no checkpoint covers the events"
        time.sleep(0.1)
    try:
        yield Live(serve, log_key, keys["auditor"], keys["other"], producer, data)
    finally:
        serve.stop()
