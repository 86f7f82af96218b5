"""An evidence bundle as the API serves it, checked by the Go verifier and by
``auditledger verify``: both accept it, and for each mutation — re-sealed with the real
log key where the mutation is to get past the manifest — both name the same problems.
"""

from __future__ import annotations

import base64
import hashlib
import io
import subprocess
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ledger.checkpoint import sign_note
from ledger.signing import generate_key, load_private_key
from tests.conftest import CLI, CONTROLLER
from tests.goverify.conftest import Live, run

MANIFEST = "manifest.note"


@pytest.fixture(scope="module")
def served(live: Live) -> bytes:
    """The whole-log bundle of CONTROLLER, once the read side has caught up."""
    deadline = time.monotonic() + 60
    while True:
        r = httpx.get(f"{live.serve.url}/v1/controllers/{CONTROLLER}/evidence", timeout=120,
                      headers={"Authorization": f"Bearer {live.auditor}"})
        if r.status_code == 200:
            return r.content
        assert r.status_code == 503 and time.monotonic() < deadline, (r.status_code, r.text)
        time.sleep(0.5)


def members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def pack(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def reseal(files: dict[str, bytes], key: Any) -> dict[str, bytes]:
    """A new manifest over the members as they are now, signed with ``key``."""
    head = files[MANIFEST].decode().split("\n")[:3]
    lines = head + [f"{hashlib.sha256(d).hexdigest()} {n}" for n, d in files.items()
                    if n != MANIFEST]
    return {**files, MANIFEST: sign_note("".join(x + "\n" for x in lines), "auditledger",
                                         key).encode()}


def jsonl(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


def dump(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


def flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def python_verify(path: Path, log_key: str) -> tuple[int, dict[str, Any]]:
    res = subprocess.run([*CLI, "verify", str(path), "--log-key", log_key, "--json"],
                         capture_output=True, text=True, timeout=300)
    return res.returncode, orjson.loads(res.stdout.strip().splitlines()[-1])


def test_served_bundle_verifies_in_go_and_python(goverify: Path, live: Live, served: bytes,
                                                 tmp_path: Path) -> None:
    path = tmp_path / "bundle.zip"
    path.write_bytes(served)
    res = run(goverify, "bundle", "--log-key", live.log_key, path)
    assert res.code == 0, (res.report, res.stderr)
    code, py = python_verify(path, live.log_key)
    assert code == 0 and py["ok"], py["problems"][:3]
    go, pyc = res.report["controllers"][CONTROLLER], py["controllers"][CONTROLLER]
    assert (go["size"], go["root"], go["events"]) == (pyc["size"], pyc["root"], pyc["events"])
    assert go["events"] >= 602 and go["checkpoints"] >= 2
    assert go["format"] == "auditledger-bundle/1"


def _edit(name: str, fn: Callable[[list[dict[str, Any]]], None]
          ) -> Callable[[dict[str, bytes]], dict[str, bytes]]:
    def apply(files: dict[str, bytes]) -> dict[str, bytes]:
        rows = jsonl(files[name])
        fn(rows)
        return {**files, name: dump(rows)}
    return apply


def _set(row: dict[str, Any], **kw: Any) -> None:
    row.update(kw)


def _resign_checkpoint(rows: list[dict[str, Any]]) -> None:
    note = rows[-1]["note"]
    rows[-1]["note"] = sign_note(note[: note.index("\n\n") + 1], "auditledger", generate_key())


# (name, mutation of the members, re-seal with the log key?, expected problems)
MUTATIONS: list[tuple[str, Callable[[dict[str, bytes]], dict[str, bytes]], bool, set[str]]] = [
    ("event altered, not re-sealed",
     lambda f: {**f, "events.jsonl": f["events.jsonl"].replace(b"newsletter", b"newsletteR", 1)},
     False, {"member_altered"}),
    ("member added", lambda f: {**f, "extra.txt": b"x"}, False, {"member_unlisted"}),
    ("member removed", lambda f: {k: v for k, v in f.items() if k != "keys/producers.json"},
     False, {"member_missing"}),
    ("flipped inclusion proof hash",
     _edit("proofs/inclusion.jsonl", lambda r: _set(r[5], proof=[flip(r[5]["proof"][0]),
                                                                  *r[5]["proof"][1:]])),
     True, {"inclusion_failed"}),
    ("inclusion proof for a wrong tree size",
     _edit("proofs/inclusion.jsonl", lambda r: _set(r[5], tree_size=r[5]["tree_size"] - 1)),
     True, {"inclusion_failed"}),
    ("recorded leaf hash altered",
     _edit("events.jsonl", lambda r: _set(r[7], leaf_hash=flip(r[7]["leaf_hash"]))),
     True, {"leaf_hash_mismatch"}),
    ("event removed", _edit("events.jsonl", lambda r: r.pop(9)), True, {"missing_event"}),
    ("flipped consistency proof hash",
     _edit("proofs/consistency.jsonl", lambda r: _set(r[0], proof=[flip(r[0]["proof"][0]),
                                                                    *r[0]["proof"][1:]])),
     True, {"checkpoint_fork"}),
    ("last checkpoint re-signed with another key",
     _edit("checkpoints.jsonl", _resign_checkpoint), True, {"bad_checkpoint"}),
]


@pytest.mark.parametrize(("name", "mutate", "sealed", "expected"), MUTATIONS,
                         ids=[m[0] for m in MUTATIONS])
def test_mutated_bundles_are_named_alike(
    goverify: Path, live: Live, served: bytes, tmp_path: Path, name: str,
    mutate: Callable[[dict[str, bytes]], dict[str, bytes]], sealed: bool, expected: set[str],
) -> None:
    files = mutate(members(served))
    if sealed:
        files = reseal(files, load_private_key(live.data / "keys" / "log.pem"))
    path = tmp_path / "bad.zip"
    path.write_bytes(pack(files))
    res = run(goverify, "bundle", "--log-key", live.log_key, path)
    assert res.code == 1, (name, res.report, res.stderr)
    assert expected <= set(res.problems), (name, res.report["problems"][:5])
    code, py = python_verify(path, live.log_key)
    assert code != 0
    assert set(res.problems) <= {p["problem"] for p in py["problems"]}, (
        name, res.problems, [p["problem"] for p in py["problems"]])


def test_manifest_signed_by_another_key(goverify: Path, live: Live, served: bytes,
                                        tmp_path: Path) -> None:
    path = tmp_path / "forged.zip"
    path.write_bytes(pack(reseal(members(served), generate_key())))
    res = run(goverify, "bundle", "--log-key", live.log_key, path)
    assert res.code == 1 and res.problems == ["bundle_manifest"], res.report
