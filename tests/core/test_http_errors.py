"""A wrong API key, nothing listening, or a server that never answers: one line
``error: ...`` from every CLI command that talks HTTP (emit, verify --url, evidence), and
a typed exception from the client — never a traceback, never a wait without end.

"Never answers" is a real socket on loopback that accepts connections and reads nothing
back (a hung server or proxy)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.client import Client, Refused, TimedOut, Unreachable
from ledger.envelope import complete, pseudonym
from ledger.signing import load_private_key
from tests.conftest import CLI, CONTROLLER, free_port
from tests.serving import Serve, make_data


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("http-errors")
    w = make_data(tmp)
    serve = Serve(w["data"]).start()
    events = tmp / "events.jsonl"
    events.write_bytes(orjson.dumps({
        "type": "consent.given", "controller": CONTROLLER,
        "subject": pseudonym(b"k" * 32, "x@example.org"),
        "data": {"purposes": ["a"], "method": "web_form", "notice_version": "v1"}}) + b"\n")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts (the kernel does), never answers
    w.update(url=serve.url, tmp=tmp, events=events,
             silent=f"http://127.0.0.1:{silent.getsockname()[1]}",
             closed=f"http://127.0.0.1:{free_port()}")
    yield w
    silent.close()
    serve.stop()


def _run(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)
    return proc, time.monotonic() - began


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def _emit(w: dict[str, Any], url: str, key: str, *extra: str) -> list[str]:
    return ["emit", "--url", url, "--api-key", key, "--key", str(w["key"]),
            "--producer", "crm", *extra, str(w["events"])]


def _verify(w: dict[str, Any], url: str, key: str, *extra: str) -> list[str]:
    return ["verify", "--url", url, "--api-key", key, "--controller", CONTROLLER,
            "--state", str(w["tmp"] / "state.json"), *extra]


def _evidence(w: dict[str, Any], url: str, key: str) -> list[str]:
    return ["evidence", "--url", url, "--api-key", key, "--controller", CONTROLLER,
            "--out", str(w["tmp"] / "bundle.zip")]


COMMANDS = {"emit": _emit, "verify": _verify, "evidence": _evidence}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_wrong_api_key_is_one_line(world: dict[str, Any], command: str) -> None:
    proc, _ = _run(*COMMANDS[command](world, world["url"], "alk_wrong"))
    line = _one_line(proc)
    assert proc.returncode == 2 and "401" in line, line


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_nothing_listening_is_one_line(world: dict[str, Any], command: str) -> None:
    extra = ("--retries", "0") if command == "emit" else ()
    proc, _ = _run(*COMMANDS[command](world, world["closed"], world["producer"]), *extra)
    line = _one_line(proc)
    assert proc.returncode in (1, 2), proc.returncode
    assert "Connection refused" in line or "ConnectError" in line, line


@pytest.mark.parametrize("command", ["emit", "verify"])
def test_a_server_that_never_answers_times_out(world: dict[str, Any], command: str) -> None:
    extra = ("--retries", "0", "--timeout", "1") if command == "emit" else ("--timeout", "1")
    proc, took = _run(*COMMANDS[command](world, world["silent"], world["producer"], *extra))
    line = _one_line(proc)
    assert proc.returncode == (1 if command == "emit" else 2)
    assert "Timeout" in line or "within 1 s" in line, line
    assert took < 30, f"waited {took:.0f} s"


def test_client_raises_typed_exceptions(world: dict[str, Any]) -> None:
    env = complete({"type": "consent.given", "controller": CONTROLLER,
                    "subject": pseudonym(b"k" * 32, "y@example.org"),
                    "data": {"purposes": ["a"], "method": "web_form",
                             "notice_version": "v1"}},
                   load_private_key(Path(world["key"])), "crm")
    with pytest.raises(Refused, match="401"):
        Client(world["url"], "alk_wrong", retries=0).submit([env])
    with pytest.raises(Unreachable, match="cannot reach") as exc:
        Client(world["closed"], world["producer"], retries=0).submit([env])
    assert not isinstance(exc.value, TimedOut)
    began = time.monotonic()
    with pytest.raises(TimedOut, match=r"within 0\.5 s"):
        Client(world["silent"], world["producer"], retries=1, timeout=0.5).submit([env])
    assert time.monotonic() - began < 10
    assert Client(world["url"], world["producer"]).timeout == 60.0, "a default timeout"
    (ok,) = Client(world["url"], world["producer"]).submit([env])
    assert ok["status"] == "accepted"
