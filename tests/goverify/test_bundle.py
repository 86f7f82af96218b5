"""An evidence bundle as the API serves it, checked by the Go verifier and by
``auditledger verify``: both accept it, and for each mutation — re-sealed with the real
log key where the mutation is to get past the manifest — both name the same problems.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
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
from tests.api.test_evidence import members, rezip
from tests.conftest import CLI, CONTROLLER
from tests.goverify.conftest import Live, run

MANIFEST = "manifest.note"
DIGEST = re.compile(r"[0-9a-f]{64} .+")
FORMATS = ("auditledger-bundle/1", "auditledger-bundle/2")


def evidence(live: Live, query: str = "") -> bytes:
    """A bundle from the API, once the read side has caught up."""
    deadline = time.monotonic() + 60
    while True:
        r = httpx.get(f"{live.serve.url}/v1/controllers/{CONTROLLER}/evidence{query}",
                      timeout=120, headers={"Authorization": f"Bearer {live.auditor}"})
        if r.status_code == 200:
            return r.content
        assert r.status_code == 503 and time.monotonic() < deadline, (r.status_code, r.text)
        time.sleep(0.5)


@pytest.fixture(scope="module")
def served(live: Live) -> bytes:
    """The whole-log bundle of CONTROLLER."""
    return evidence(live)


@pytest.fixture(scope="module")
def period(live: Live) -> bytes:
    """A bundle from the time of a checkpoint signed after 600 events, to now: in format 2
    a range that starts past leaf 0, with administration events as context."""
    cp = httpx.get(f"{live.serve.url}/v1/controllers/{CONTROLLER}/checkpoint", timeout=30,
                   headers={"Authorization": f"Bearer {live.auditor}"}).json()
    assert cp["size"] >= 602, cp
    live.producer.post(live.producer.batch(50))
    time.sleep(1.5)  # a checkpoint covers them
    return evidence(live, f"?from={cp['created_at']}")


def reseal(files: dict[str, bytes], key: Any) -> dict[str, bytes]:
    """A new manifest over the members as they are now, signed with ``key``."""
    text = files[MANIFEST].decode()
    head = [x for x in text[: text.index("\n\n")].split("\n") if not DIGEST.fullmatch(x)]
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
    assert go["format"] == members(served)[MANIFEST].decode().split("\n")[0]
    assert go["format"] in FORMATS


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


def _flip_first(rows: list[dict[str, Any]]) -> None:
    rows[0]["proof"] = [flip(rows[0]["proof"][0]), *rows[0]["proof"][1:]]


def _swap(rows: list[dict[str, Any]]) -> None:
    rows[3], rows[4] = rows[4], rows[3]


def _flip_left(files: dict[str, bytes]) -> dict[str, bytes]:
    doc = orjson.loads(files["proofs/range.json"])
    doc["left"] = [flip(doc["left"][0]), *doc["left"][1:]]
    return {**files, "proofs/range.json": orjson.dumps(doc)}


Mutation = tuple[str, Callable[[dict[str, bytes]], dict[str, bytes]], bool, set[str],
                 tuple[str, ...]]
V2 = ("auditledger-bundle/2",)

# (name, mutation of the members, re-seal with the log key?, problems the Go verifier must
# name, formats it applies to). Inclusion proofs are the events' in format 1, the context
# events' in format 2; the other members keep their names and line shapes.
MUTATIONS: list[Mutation] = [
    ("event altered, not re-sealed",
     lambda f: {**f, "events.jsonl": f["events.jsonl"].replace(b"newsletter", b"newsletteR", 1)},
     False, {"member_altered"}, FORMATS),
    ("member added", lambda f: {**f, "extra.txt": b"x"}, False, {"member_unlisted"}, FORMATS),
    ("member removed", lambda f: {k: v for k, v in f.items() if k != "keys/producers.json"},
     False, {"member_missing"}, FORMATS),
    ("flipped inclusion proof hash", _edit("proofs/inclusion.jsonl", _flip_first),
     True, {"inclusion_failed"}, FORMATS),
    ("inclusion proof for a wrong tree size",
     _edit("proofs/inclusion.jsonl", lambda r: _set(r[0], tree_size=r[0]["tree_size"] - 1)),
     True, {"inclusion_failed"}, FORMATS),
    ("recorded leaf hash altered",
     _edit("events.jsonl", lambda r: _set(r[7], leaf_hash=flip(r[7]["leaf_hash"]))),
     True, {"leaf_hash_mismatch"}, FORMATS),
    ("event removed", _edit("events.jsonl", lambda r: r.pop(9)), True, {"missing_event"},
     FORMATS),
    ("flipped consistency proof hash", _edit("proofs/consistency.jsonl", _flip_first),
     True, {"checkpoint_fork"}, FORMATS),
    ("last checkpoint re-signed with another key",
     _edit("checkpoints.jsonl", _resign_checkpoint), True, {"bad_checkpoint"}, FORMATS),
    ("events reordered", _edit("events.jsonl", _swap), True, {"event_out_of_order"}, V2),
    ("compact range altered", _flip_left, True, {"range_left_mismatch", "range_root_mismatch"},
     V2),
    ("checkpoint time field altered",
     _edit("checkpoints.jsonl", lambda r: _set(r[-1], time="2030-01-01T00:00:00.000Z")),
     True, {"checkpoint_time_mismatch"}, V2),
]


def test_mutated_bundles_are_named_alike(goverify: Path, live: Live, period: bytes,
                                         tmp_path: Path) -> None:
    """Every mutation that applies to the served format: the Go verifier names what it
    must, and every name it gives ``auditledger verify`` gives too."""
    base = members(period)
    fmt = base[MANIFEST].decode().split("\n")[0]
    assert fmt in FORMATS
    log_key = load_private_key(live.data / "keys" / "log.pem")
    ran = []
    for name, mutate, sealed, expected, formats in MUTATIONS:
        if fmt not in formats:
            continue
        files = mutate(dict(base))
        if sealed:
            files = reseal(files, log_key)
        path = tmp_path / "bad.zip"
        path.write_bytes(rezip(files))
        res = run(goverify, "bundle", "--log-key", live.log_key, path)
        assert res.code == 1, (name, res.report, res.stderr)
        assert expected <= set(res.problems), (name, res.report["problems"][:5])
        code, py = python_verify(path, live.log_key)
        assert code != 0
        assert set(res.problems) <= {p["problem"] for p in py["problems"]}, (
            name, res.problems, [p["problem"] for p in py["problems"]])
        ran.append(name)
    assert len(ran) >= 9, ran


def test_period_bundle_verifies_alike(goverify: Path, live: Live, period: bytes,
                                      tmp_path: Path) -> None:
    path = tmp_path / "period.zip"
    path.write_bytes(period)
    res = run(goverify, "bundle", "--log-key", live.log_key, path)
    assert res.code == 0, res.report
    code, py = python_verify(path, live.log_key)
    assert code == 0, py["problems"][:3]
    go, pyc = res.report["controllers"][CONTROLLER], py["controllers"][CONTROLLER]
    assert (go["size"], go["root"], go["events"]) == (pyc["size"], pyc["root"], pyc["events"])
    if go["format"] == "auditledger-bundle/2":
        assert go["range"] == pyc["range"] and go["range"][0] >= 602
        # Administration events, and any earlier event the report cites.
        assert go["context_events"] == pyc["context_events"] >= 2


def test_duplicate_member(goverify: Path, live: Live, served: bytes, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members(served).items():
            zf.writestr(name, data)
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("events.jsonl", b"")
    path = tmp_path / "dup.zip"
    path.write_bytes(buf.getvalue())
    res = run(goverify, "bundle", "--log-key", live.log_key, path)
    assert res.code == 1 and "duplicate_member" in res.problems, res.report
def test_manifest_signed_by_another_key(goverify: Path, live: Live, served: bytes,
                                        tmp_path: Path) -> None:
    path = tmp_path / "forged.zip"
    path.write_bytes(rezip(reseal(members(served), generate_key())))
    res = run(goverify, "bundle", "--log-key", live.log_key, path)
    assert res.code == 1 and res.problems == ["bundle_manifest"], res.report
