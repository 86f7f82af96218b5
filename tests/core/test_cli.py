"""The write-side CLI end to end, through the real console script."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.conftest import CLI

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed: {proc.stderr}")
    return proc


def test_full_flow(tmp_path: Path) -> None:
    data = tmp_path / "d"
    init = orjson.loads(run("init", "--data", str(data)).stdout)
    assert init["admin_api_key"].startswith("alk_")
    assert re.fullmatch(r"auditledger\+[0-9a-f]{8}\+[A-Za-z0-9+/]+=*", init["log_public_key"])
    assert init["admin_api_key"] not in (data / "auth.sqlite").read_bytes().decode("latin-1")

    reg = run("controller", "register", "--data", str(data), "--id", "NO-921119224",
              "--name", "Bedre Bedrift AS", "--country", "NO", "--tz", "Europe/Oslo",
              "--answer-within-days", "30", "--json")
    assert orjson.loads(reg.stdout)["status"] == "accepted"

    key = tmp_path / "crm.pem"
    pub = orjson.loads(run("keygen", "--out", str(key), "--json").stdout)["public_key"]
    assert len(pub) == 43 and (key.stat().st_mode & 0o777) == 0o600
    prod = run("producer", "register", "--data", str(data), "--controller", "NO-921119224",
               "--id", "crm", "--public-key", pub, "--types", "consent.*,rights_request.*",
               "--json")
    assert orjson.loads(prod.stdout)["index"] == 1

    lines = [{"type": "consent.given", "controller": "NO-921119224",
              "subject": "psn:" + "A" * 43,
              "data": {"purposes": ["newsletter"], "method": "web", "notice_version": "v1"}}
             for _ in range(7)]
    lines.append({"type": "breach.detected", "controller": "NO-921119224",
                  "data": {"breach_id": "b", "detected_at": "2026-01-01T00:00:00Z",
                           "description": "x"}})
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\n")
    emitted = run("emit", "--data", str(data), "--key", str(key), "--producer", "crm",
                  str(events), check=False)
    results = [orjson.loads(x) for x in emitted.stdout.splitlines()]
    assert emitted.returncode == 1, "one event was rejected"
    assert [r["status"] for r in results] == ["accepted"] * 7 + ["rejected"]
    assert results[-1]["code"] == "type_not_allowed"
    assert [r["index"] for r in results[:7]] == list(range(2, 9))

    verified = run("verify", str(data), "--json")
    report = orjson.loads(verified.stdout)
    assert report["ok"] and report["controllers"]["NO-921119224"]["size"] == 9

    auditor = orjson.loads(run("apikey", "create", "--data", str(data), "--role", "auditor",
                               "--controller", "NO-921119224", "--json").stdout)
    assert auditor["role"] == "auditor" and auditor["api_key"].startswith("alk_")


@pytest.mark.parametrize("args, needle", [
    (["verify", "/nonexistent/dir"], "no such"),
    (["controller", "register", "--data", "/nonexistent", "--id", "NO-1", "--name", "x",
      "--country", "NO", "--tz", "Europe/Oslo"], "not an auditledger data directory"),
    (["emit", "--key", "k.pem", "--producer", "p", "e.jsonl"], "exactly one of"),
])
def test_bad_input_exits_non_zero_with_one_line(args: list[str], needle: str) -> None:
    proc = run(*args, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_bad_time_zone(tmp_path: Path) -> None:
    run("init", "--data", str(tmp_path / "d"))
    proc = run("controller", "register", "--data", str(tmp_path / "d"), "--id", "NO-1",
               "--name", "x", "--country", "NO", "--tz", "Mars/Olympus", check=False)
    assert proc.returncode == 2 and "unknown time zone" in proc.stderr


def test_keygen_refuses_to_overwrite(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    run("keygen", "--out", str(key))
    proc = run("keygen", "--out", str(key), check=False)
    assert proc.returncode == 2 and "not overwriting" in proc.stderr


def test_demo_loads_verifies_and_prints_a_checkpoint(tmp_path: Path) -> None:
    proc = run("demo", "--data", str(tmp_path / "demo"), "--load-only", "--json")
    doc = orjson.loads(proc.stdout)
    assert doc["verify"]["ok"] is True
    assert doc["loaded"]["NO-921119224"] >= 300
    note = doc["checkpoints"]["NO-921119224"]
    assert note.startswith("auditledger/NO-921119224\n")
    again = orjson.loads(run("demo", "--data", str(tmp_path / "demo"), "--load-only",
                             "--json").stdout)
    assert again["loaded"]["NO-921119224"] == 0, "a second run does not load twice"


def test_a_broken_plugin_does_not_take_the_cli_down(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    from typer.testing import CliRunner

    import ledger.cli as cli

    broken = EntryPoint("ghost", "no_such_module.anywhere:app", "auditledger.commands")
    monkeypatch.setattr(cli, "entry_points", lambda group: [broken])
    monkeypatch.setattr(cli, "_plugins", {})
    app = cli.typer.Typer()
    monkeypatch.setattr(cli, "app", app)
    app.command()(cli.keygen)
    cli._load_plugins()
    runner = CliRunner()
    res = runner.invoke(app, ["ghost"])
    assert res.exit_code == 2 and "'ghost' command is unavailable" in res.output
    assert runner.invoke(app, ["keygen", "--help"]).exit_code == 0
