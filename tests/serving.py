"""A real ``auditledger serve`` process and a producer posting to it over HTTP, for the
supervision and fault tests (tests/api/test_supervision.py, tests/kafka/test_serve_faults.py).
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from ledger.envelope import complete, pseudonym
from ledger.signing import load_private_key
from tests.conftest import CLI, CONTROLLER, cli_json, free_port, wait_until_healthy


def make_data(tmp: Path, env: dict[str, str] | None = None,
              kafka: str | None = None, init_args: tuple[str, ...] = ()) -> dict[str, Any]:
    """A data directory with CONTROLLER, producer ``crm`` (consent.*) and its keys."""
    data = tmp / "data"

    def run(*args: str) -> dict[str, Any]:
        return cli_json(*args, env=env)

    admin = run("init", "--data", str(data), *(["--kafka", kafka] if kafka else []),
                *init_args)
    run("controller", "register", "--data", str(data), "--id", CONTROLLER, "--name", "B AS",
        "--country", "NO", "--tz", "Europe/Oslo")
    key = tmp / "crm.pem"
    pub = run("keygen", "--out", str(key))["public_key"]
    run("producer", "register", "--data", str(data), "--controller", CONTROLLER, "--id", "crm",
        "--public-key", pub, "--types", "consent.*")
    producer = run("apikey", "create", "--data", str(data), "--role", "producer",
                   "--controller", CONTROLLER)["api_key"]
    return {"data": data, "key": key, "producer": producer, "admin": admin["admin_api_key"]}


class Serve:
    """``auditledger serve --data DATA`` on a fixed port, restartable."""

    def __init__(self, data: Path, port: int | None = None,
                 env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.data, self.port, self.env, self.args = data, port or free_port(), env, args
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> Serve:
        """Start and wait for /healthz. Its stderr (and its worker's) goes to a file
        beside DATA, not a pipe nobody reads, which would block it once full."""
        with (self.data.parent / "serve.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [*CLI, "serve", "--data", str(self.data), "--port", str(self.port), "--json",
                 *self.args],
                stdout=subprocess.DEVNULL, stderr=log, env=self.env)
        try:
            wait_until_healthy(self.url, self.proc, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None
        return self

    def log_tail(self, lines: int = 30) -> str:
        path = self.data.parent / "serve.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def ready(self) -> tuple[int, dict[str, Any]]:
        r = httpx.get(f"{self.url}/readyz", timeout=10)
        return r.status_code, r.json()

    def wait_ready(self, timeout: float, lag0: bool = False) -> dict[str, Any]:
        """Poll /readyz until 200 (and, with ``lag0``, nothing left to project)."""
        deadline = time.monotonic() + timeout
        while True:
            code, doc = self.ready()
            if code == 200 and (not lag0 or doc["projections"]["lag"] == 0):
                return doc
            assert time.monotonic() < deadline, doc
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


class Producer:
    """Signs consent events and posts them in batches; remembers what was acknowledged."""

    def __init__(self, url: str, api_key: str, key_file: Path,
                 controller: str = CONTROLLER) -> None:
        self.url, self.api_key, self.controller = url, api_key, controller
        self.key = load_private_key(key_file)
        self.acked: set[str] = set()
        #: event id -> the leaf index its acknowledgement named
        self.indexes: dict[str, int] = {}
        self.failures = 0
        #: (start, end) of every request, ``time.monotonic()``: which ones a fault hit
        self.requests: list[tuple[float, float]] = []
        self._n = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def batch(self, size: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(size):
            self._n += 1
            out.append(complete({
                "type": "consent.given", "controller": self.controller,
                "subject": pseudonym(b"k" * 32, f"user{self._n}@example.org"),
                "data": {"purposes": ["newsletter"], "method": "web_form",
                         "notice_version": "v1"}}, self.key, "crm"))
        return out

    def post(self, batch: list[dict[str, Any]], timeout: float = 30) -> list[dict[str, Any]]:
        """POST one batch; the per-event results (raises on a transport failure or a
        non-200 answer)."""
        r = httpx.post(f"{self.url}/v1/events", json=batch, timeout=timeout,
                       headers={"Authorization": f"Bearer {self.api_key}"})
        assert r.status_code == 200, (r.status_code, r.text[:300])
        results = r.json()
        for x in results:
            if x["status"] in ("accepted", "duplicate"):
                self.acked.add(x["event_id"])
                self.indexes[x["event_id"]] = x["index"]
        return results

    def run(self, size: int = 50, resubmit: bool = False, timeout: float = 30) -> Producer:
        """Post batches on a thread until ``stop()``. A failed request counts in
        ``failures``; with ``resubmit`` the same batch is sent again (as a producer that
        must deliver does), else a new one (its events are not acknowledged)."""

        def loop() -> None:
            batch = self.batch(size)
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    self.post(batch, timeout)
                    batch = self.batch(size)
                except (httpx.HTTPError, AssertionError):
                    self.failures += 1
                    if not resubmit:
                        batch = self.batch(size)
                    self._stop.wait(0.1)
                finally:
                    self.requests.append((began, time.monotonic()))

        self._thread = threading.Thread(target=loop, name="producer", daemon=True)
        self._thread.start()
        return self

    def overlapping(self, start: float, end: float) -> int:
        """Requests in flight at some moment of [start, end] (failed or held)."""
        return sum(1 for a, b in self.requests if a <= end and b >= start)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)
            assert not self._thread.is_alive(), "producer stuck in a request"


def log_events(url: str, admin: str, controller: str = CONTROLLER) -> list[dict[str, Any]]:
    """Every event of ``controller``, oldest first, through the API."""
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        r = httpx.get(f"{url}/v1/controllers/{controller}/events", params=params,
                      headers={"Authorization": f"Bearer {admin}"}, timeout=30)
        assert r.status_code == 200, r.text
        doc = r.json()
        out.extend(doc["items"])
        cursor = doc["next_cursor"]
        if not cursor:
            return out


def log_event_ids(url: str, admin: str) -> list[str]:
    """Every event id of CONTROLLER, oldest first, through the API."""
    return [e["event_id"] for e in log_events(url, admin)]


def verify_data(data: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``auditledger verify DATA --json`` (the process exit status is checked too)."""
    import orjson

    res = subprocess.run([*CLI, "verify", str(data), "--json"], capture_output=True,
                         text=True, env=env, timeout=300)
    doc = orjson.loads(res.stdout.strip().splitlines()[-1])
    assert res.returncode == 0 and doc["ok"], (res.returncode, doc.get("problems", [])[:3],
                                               res.stderr[-500:])
    return doc
