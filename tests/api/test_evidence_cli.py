"""``auditledger evidence`` against a real ``auditledger serve``: the bundle it fetches
verifies with the pinned log key; a bad key is one line and exit 2."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.clock import format_rfc3339
from tests.conftest import CLI, CONTROLLER, cli_json
from tests.serving import Serve, make_data


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    setup = make_data(tmp_path)
    server = Serve(setup["data"]).start()
    try:
        yield {**setup, "url": server.url, "auditor": cli_json(
            "apikey", "create", "--data", str(setup["data"]), "--role", "auditor",
            "--controller", CONTROLLER)["api_key"]}
    finally:
        server.stop()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def test_evidence_fetches_a_bundle_that_verifies(served: dict[str, Any],
                                                 tmp_path: Path) -> None:
    from datetime import UTC, datetime

    events = tmp_path / "events.jsonl"
    now = format_rfc3339(datetime.now(UTC))
    events.write_text("".join(orjson.dumps({
        "type": "consent.given", "controller": CONTROLLER, "occurred_at": now,
        "subject": "psn:" + "A" * 43,
        "data": {"purposes": ["newsletter"], "method": "web_form", "notice_version": "v1"},
    }).decode() + "\n" for _ in range(5)))
    emitted = run("emit", "--url", served["url"], "--api-key", served["producer"], "--key",
                  str(served["key"]), "--producer", "crm", str(events))
    assert emitted.returncode == 0, emitted.stderr
    out = tmp_path / "b.zip"
    got = run("evidence", "--url", served["url"], "--api-key", served["auditor"],
              "--controller", CONTROLLER, "--out", str(out), "--json")
    assert got.returncode == 0, got.stderr
    assert orjson.loads(got.stdout.splitlines()[-1])["bytes"] == out.stat().st_size > 0
    log_key = (served["data"] / "keys" / "log.pub").read_text().strip()
    checked = run("verify", str(out), "--log-key", log_key)
    assert checked.returncode == 0, checked.stdout
    assert "complete: leaves 0..6 of tree size 7" in checked.stdout  # 2 admin + 5 events


def test_evidence_with_a_bad_key_is_one_line_exit_2(served: dict[str, Any],
                                                    tmp_path: Path) -> None:
    got = run("evidence", "--url", served["url"], "--api-key", "nope", "--controller",
              CONTROLLER, "--out", str(tmp_path / "b.zip"))
    assert got.returncode == 2 and len(got.stderr.strip().splitlines()) == 1, got.stderr
    assert "401" in got.stderr and not (tmp_path / "b.zip").exists()
