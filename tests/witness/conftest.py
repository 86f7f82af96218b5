"""A real C2SP tlog-witness for tests: litewitness (filippo.io/torchwood).

``scripts/bootstrap.sh --full`` installs ``litewitness`` and ``witnessctl`` from the Go
module proxy into ``infra/witness/bin`` (ignored by git). The ``witness`` fixture (one per
test) starts a dedicated ``ssh-agent`` holding a fresh Ed25519 witness key, starts
litewitness on a free loopback port with its SQLite database in a temporary directory,
waits until it answers, and stops both at the end. If the binaries are missing or the
witness cannot start the test fails with the log tail: these tests never skip.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from ledger.witness import cosigner_key
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("AUDITLEDGER_WITNESS_BIN", REPO / "infra" / "witness" / "bin"))
NAME = "witness.test/w1"


class Witness:
    """litewitness with its own ssh-agent; ``add_log`` tells it which logs to cosign."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp
        self.db = tmp / "litewitness.db"
        self.sock = tmp / "agent.sock"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = Ed25519PrivateKey.generate()
        pk = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.vkey = cosigner_key(NAME, pk)
        self.procs: list[subprocess.Popen[bytes]] = []

    def _tool(self, name: str) -> str:
        path = BIN / name
        if not path.exists():
            pytest.fail(f"{path} missing: run scripts/bootstrap.sh --full", pytrace=False)
        return str(path)

    def log_tail(self, lines: int = 30) -> str:
        path = self.dir / "litewitness.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self, timeout: float = 30) -> Witness:
        key_file = self.dir / "witness.key"
        key_file.write_bytes(self.key.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH,
                                                    NoEncryption()))
        key_file.chmod(0o600)
        env = {**os.environ, "SSH_AUTH_SOCK": str(self.sock)}
        self.sock.unlink(missing_ok=True)  # left by an agent stopped earlier in the test
        self.procs = []
        log = (self.dir / "litewitness.log").open("ab")
        # -D: foreground, so the fixture owns the process and stops it by its pid.
        self.procs.append(subprocess.Popen(["ssh-agent", "-D", "-a", str(self.sock)],
                                           stdout=log, stderr=log))
        self._wait(lambda: self.sock.exists(), timeout, "ssh-agent socket")
        subprocess.run(["ssh-add", str(key_file)], env=env, check=True,
                       capture_output=True, timeout=30)
        # litewitness creates its database on start; witnessctl needs the tables.
        self.procs.append(subprocess.Popen(
            [self._tool("litewitness"), "-db", str(self.db), "-name", NAME,
             "-key", self.fingerprint(), "-ssh-agent", str(self.sock),
             "-listen", f"127.0.0.1:{self.port}"], stdout=log, stderr=log))
        self._wait(self._answers, timeout, "litewitness HTTP")
        return self

    def fingerprint(self) -> str:
        """OpenSSH's ``SHA256:`` fingerprint of the key (how litewitness picks it)."""
        pk = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        blob = b"".join(len(x).to_bytes(4, "big") + x for x in (b"ssh-ed25519", pk))
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"

    def _answers(self) -> bool:
        if any(p.poll() is not None for p in self.procs):
            pytest.fail(f"witness process exited\n{self.log_tail()}", pytrace=False)
        try:
            return httpx.get(self.url + "/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def _wait(self, ready: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():  # type: ignore[operator]
            if time.monotonic() > deadline:
                pytest.fail(f"{what} not ready within {timeout:.0f}s\n{self.log_tail()}",
                            pytrace=False)
            time.sleep(0.05)

    def add_log(self, origin: str, log_vkey: str) -> None:
        for args in (["add-log", "-db", str(self.db), "-origin", origin],
                     ["add-key", "-db", str(self.db), "-origin", origin, "-key", log_vkey]):
            res = subprocess.run([self._tool("witnessctl"), *args], capture_output=True,
                                 text=True, timeout=30)
            assert res.returncode == 0, res.stderr

    def known(self, origin: str) -> str:
        """The witness's own page: its logs with the size and root it last cosigned."""
        return httpx.get(self.url + "/", timeout=5).text

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[Witness]:
    w = Witness(tmp_path / "witness")
    w.dir.mkdir()
    try:
        yield w.start()
    finally:
        w.stop()
