"""Fixtures shared by every suite: a fresh ledger with one controller and one producer;
``pg_dsn`` (session): env ``AUDITLEDGER_PG_DSN`` if set, else a private PostgreSQL cluster
started with ``infra/postgres/pg`` and stopped at the end. If PostgreSQL cannot start, the
tests FAIL with the reason: they never skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.clock import FixedClock, format_rfc3339
from ledger.envelope import complete, pseudonym
from ledger.service import Ledger, init_data_dir
from ledger.signing import generate_key, public_key_text

CONTROLLER = "NO-921119224"
OTHER = "DK-26459400"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SUBJECT_KEY = b"s" * 32
REPO = Path(__file__).resolve().parents[1]
PG_SCRIPT = REPO / "infra" / "postgres" / "pg"


@dataclass
class World:
    """A ledger plus the keys a test needs to write to it."""

    data_dir: Path
    ledger: Ledger
    clock: FixedClock
    key: Ed25519PrivateKey  # producer "crm" of CONTROLLER, allowed "*"
    admin_token: str

    def event(self, type_: str = "consent.given", data: dict[str, Any] | None = None,
              subject: str | None = "alice@example.org", controller: str = CONTROLLER,
              producer: str = "crm", key: Ed25519PrivateKey | None = None,
              **fields: Any) -> dict[str, Any]:
        partial: dict[str, Any] = {"type": type_, "controller": controller, "data": data or {
            "purposes": ["newsletter"], "method": "web_form", "notice_version": "v1"}}
        if subject is not None:
            partial["subject"] = pseudonym(SUBJECT_KEY, subject)
        partial["occurred_at"] = format_rfc3339(self.clock.now())
        partial.update(fields)
        return complete(partial, key or self.key, producer)


def make_world(tmp: Path, verifier_workers: int = 0) -> World:
    cfg, token = init_data_dir(tmp / "ledger")
    clock = FixedClock(NOW)
    ledger = Ledger(cfg, clock=clock, verifier_workers=verifier_workers)
    ledger.register_controller(CONTROLLER, {"name": "Bedre Bedrift AS", "country": "NO",
                                            "timezone": "Europe/Oslo"})
    key = generate_key()
    res = ledger.register_producer(CONTROLLER, "crm", public_key_text(key), ["*"])
    assert res.status == "accepted", res
    return World(tmp / "ledger", ledger, clock, key, token)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    yield w
    w.ledger.close()


def wait_until_healthy(url: str, proc: Any, timeout: float = 30.0) -> None:
    """Poll ``url``/healthz until a started ``auditledger serve`` process answers; fail with
    its stderr if it dies first."""
    import subprocess
    import time

    import httpx

    assert isinstance(proc, subprocess.Popen)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "server died"
        assert time.monotonic() < deadline, f"server at {url} did not come up in {timeout} s"
        time.sleep(0.1)


CLI = [sys.executable, "-c", "from ledger.cli import main; main()"]


def cli_json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``auditledger ARGS --json`` and return its last JSON line (fails on non-zero)."""
    import subprocess

    import orjson

    out = subprocess.run([*CLI, *args, "--json"], capture_output=True, text=True, check=True,
                         env=env)
    return orjson.loads(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- PostgreSQL --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    env = os.environ.get("AUDITLEDGER_PG_DSN")
    if env:
        yield env
        return
    pg_dir = Path(tempfile.mkdtemp(prefix="auditledger-pg-"))
    proc = subprocess.run([str(PG_SCRIPT), "start", "--dir", str(pg_dir)],
                          capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        pytest.fail(f"PostgreSQL did not start ({PG_SCRIPT}): {proc.stderr.strip()[-2000:]}",
                    pytrace=False)
    dsn = proc.stdout.strip().splitlines()[-1]
    try:
        yield dsn
    finally:
        subprocess.run([str(PG_SCRIPT), "stop", "--dir", str(pg_dir)], capture_output=True,
                       timeout=120)
        shutil.rmtree(pg_dir, ignore_errors=True)
