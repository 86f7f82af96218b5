"""The two complete examples in docs/producers.md (curl + openssl, Node.js), taken from
the document as they are and run against a real ``auditledger serve``: each must get its
event accepted and find the receipt's leaf hash equal to its own, and the Node one must
pass the test vectors first and check its inclusion proof. The docs cannot rot."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import CONTROLLER, REPO
from tests.conftest import cli_json as cli
from tests.serving import Serve, make_data

DOC = REPO / "docs" / "producers.md"


def example(marker: str) -> str:
    """The fenced block of docs/producers.md whose first line is ``marker``."""
    blocks = re.findall(r"```(?:sh|js)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    found = [b for b in blocks if b.startswith(marker + "\n")]
    assert len(found) == 1, f"{marker} not found once in {DOC}"
    return found[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("producers-doc")
    w = make_data(tmp)
    from ledger.service import Ledger

    ledger = Ledger.open(w["data"])
    try:
        subject_key = ledger.keys.subject_key(CONTROLLER)
    finally:
        ledger.close()
    auditor = cli("apikey", "create", "--data", str(w["data"]), "--role", "auditor",
                  "--controller", CONTROLLER)["api_key"]
    serve = Serve(w["data"]).start()
    w["env"] = {**os.environ, "URL": serve.url, "API_KEY": w["producer"],
                "CONTROLLER": CONTROLLER, "PRODUCER": "crm", "KEY_FILE": str(w["key"]),
                "SUBJECT_KEY_HEX": subject_key.hex(),
                "VECTORS": str(REPO / "schemas" / "testvectors")}
    w["auditor"], w["tmp"], w["serve"] = auditor, tmp, serve
    yield w
    serve.stop()


def _accepted_with_receipt(out: str) -> None:
    assert '"status":"accepted"' in out.replace(" ", ""), out
    assert "receipt matches: " in out, out


def test_the_curl_example(world: dict[str, Any]) -> None:
    script = world["tmp"] / "produce.sh"
    script.write_text(example("# file: produce.sh"))
    proc = subprocess.run(["sh", str(script)], cwd=world["tmp"], env=world["env"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    from ledger.signing import load_private_key, public_key_text

    assert proc.stdout.splitlines()[0] == public_key_text(load_private_key(world["key"]))
    _accepted_with_receipt(proc.stdout)


def test_the_node_example(world: dict[str, Any]) -> None:
    node = shutil.which("node")
    assert node, "node is not installed (scripts/bootstrap.sh installs it)"
    script = world["tmp"] / "produce.mjs"
    script.write_text(example("// file: produce.mjs"))
    env = {**world["env"], "AUDITOR_KEY": world["auditor"]}
    proc = subprocess.run([node, str(script)], cwd=world["tmp"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    lines = proc.stdout.splitlines()
    assert lines[0] == "vectors: canonical bytes, signatures and leaf hashes match"
    _accepted_with_receipt(proc.stdout)
    assert re.search(r"included in the checkpoint of size \d+", proc.stdout), proc.stdout


def test_a_wrong_vector_is_caught_by_the_node_example(world: dict[str, Any]) -> None:
    """The example's self-check can fail: a copy of the vectors with one byte changed."""
    vectors = world["tmp"] / "vectors"
    shutil.copytree(REPO / "schemas" / "testvectors", vectors, dirs_exist_ok=True)
    path = vectors / "canonical.json"
    text = path.read_text()
    path.write_text(text.replace('"canonical": "{\\"a\\":1', '"canonical": "{\\"a\\":2', 1))
    script = world["tmp"] / "produce.mjs"
    script.write_text(example("// file: produce.mjs"))
    proc = subprocess.run([shutil.which("node") or "node", str(script)], cwd=world["tmp"],
                          env={**world["env"], "VECTORS": str(vectors)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "JCS differs: key order" in proc.stderr, proc.stderr
