"""``auditledger apikey list`` shows every key without its secret; ``apikey revoke``
takes effect at the next request of a ``serve`` that is already running."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import orjson

from tests.conftest import CLI, CONTROLLER
from tests.conftest import cli_json as cli
from tests.serving import Serve, make_data


def _list(data: Path) -> list[dict]:
    return cli("apikey", "list", "--data", str(data))  # cli_json adds --json


def test_list_and_revoke_against_a_running_serve(tmp_path: Path) -> None:
    w = make_data(tmp_path)
    data = w["data"]
    auditor = cli("apikey", "create", "--data", str(data), "--role", "auditor",
                  "--controller", CONTROLLER)
    keys = _list(data)
    assert [k["role"] for k in keys] == ["admin", "producer", "auditor"]
    assert keys[2]["key_id"] == auditor["key_id"]
    assert keys[2]["controllers"] == [CONTROLLER] and keys[0]["controllers"] == []
    for k in keys:
        assert set(k) == {"key_id", "role", "controllers", "created_at", "revoked",
                          "revoked_at"}
        assert k["revoked"] is False and k["revoked_at"] is None
        assert k["created_at"].endswith("Z")
    listing = subprocess.run([*CLI, "apikey", "list", "--data", str(data)],
                             capture_output=True, text=True, timeout=60)
    for secret in (w["admin"], w["producer"], auditor["api_key"]):
        assert secret not in listing.stdout and secret not in orjson.dumps(keys).decode()
    assert len(listing.stdout.splitlines()) == 3 and "active" in listing.stdout

    serve = Serve(data).start()
    try:
        url = f"{serve.url}/v1/controllers"

        def status(token: str) -> int:
            return httpx.get(url, headers={"Authorization": f"Bearer {token}"},
                             timeout=10).status_code

        assert status(auditor["api_key"]) == 200
        revoked = cli("apikey", "revoke", "--data", str(data), auditor["key_id"])
        assert revoked["revoked"] is True and revoked["revoked_at"].endswith("Z")
        assert status(auditor["api_key"]) == 401, "revoked key still let in"
        assert status(w["admin"]) == 200, "another key was touched"
    finally:
        serve.stop()
    after = {k["key_id"]: k for k in _list(data)}
    assert after[auditor["key_id"]]["revoked"] is True
    again = cli("apikey", "revoke", "--data", str(data), auditor["key_id"])
    assert again["revoked_at"] == revoked["revoked_at"], "a second revoke keeps the first time"


def test_revoking_an_unknown_key_is_one_line(tmp_path: Path) -> None:
    w = make_data(tmp_path)
    proc = subprocess.run([*CLI, "apikey", "revoke", "--data", str(w["data"]), "nope"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: no API key 'nope' (see auditledger apikey list)"]
