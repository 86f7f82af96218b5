"""Shared by the HTTP benchmarks: a prepared data dir, a server process, percentiles."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from ledger.apikeys import ApiKeyStore
from ledger.service import Ledger, init_data_dir
from ledger.signing import generate_key, public_key_text

CONTROLLER = "NO-921119224"
CLI = [sys.executable, "-c", "from ledger.cli import main; main()"]


@dataclass
class Prepared:
    data_dir: Path
    key: object  # the producer's Ed25519 private key
    producer_token: str
    auditor_token: str


def prepare(data_dir: Path) -> Prepared:
    """A new ledger with one controller, producer ``bench`` (any type) and API keys."""
    cfg, _ = init_data_dir(data_dir)
    ledger = Ledger(cfg, verifier_workers=0)
    ledger.register_controller(CONTROLLER, {"name": "Bench AS", "country": "NO",
                                            "timezone": "Europe/Oslo"})
    key = generate_key()
    ledger.register_producer(CONTROLLER, "bench", public_key_text(key), ["*"])
    ledger.close()
    store = ApiKeyStore(cfg.auth_db)
    producer = store.create("producer", (CONTROLLER,))[0]
    auditor = store.create("auditor", (CONTROLLER,))[0]
    store.close()
    return Prepared(data_dir, key, producer, auditor)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``auditledger serve`` in its own process (uvicorn, one worker)."""

    def __init__(self, data_dir: Path, port: int | None = None,
                 projections: bool = True) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--data", str(data_dir), "--port", str(self.port), "--json",
             "--projections" if projections else "--no-projections"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server died: {self.proc.stderr.read().decode()}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start")
            time.sleep(0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _label(cmd: str) -> str:
    if "projections run" in cmd:
        return "projections"
    if "multiprocessing" in cmd:
        return "verifier" if "spawn" in cmd else "mp-helper"
    if " serve " in cmd:
        return "serve"
    return cmd[:40]


def tree_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of ``pid`` and its live descendants, summed by
    role (serve, projections, verifier). CPU time, unlike wall time, barely moves when
    other jobs share the cores: it is what before/after comparisons rest on."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, todo = [pid], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        tree += kids
        todo += kids
    out: dict[str, float] = {}
    for p in tree:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        label = _label(cmd)
        out[label] = out.get(label, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out
