"""Evidence bundles: built by the API, verified offline by `auditledger verify`, and every
kind of member is tamper-evident."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from ledger.bundle import BundleSource, build_bundle
from ledger.cli import app as cli
from ledger.verify import verify_source
from tests.api.conftest import Api
from tests.conftest import CONTROLLER, OTHER

runner = CliRunner()


def verify_cli(path: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(cli, ["verify", str(path), *extra])
    return result.exit_code, result.output


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def rezip(parts: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)
    return buf.getvalue()


def fetch(api: Api, tmp_path: Path, **params: str) -> Path:
    r = api.get(f"/v1/controllers/{CONTROLLER}/evidence", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    path = tmp_path / "bundle.zip"
    path.write_bytes(r.content)
    return path


def test_whole_log_bundle_verifies(api: Api, tmp_path: Path) -> None:
    path = fetch(api, tmp_path)
    parts = members(path.read_bytes())
    assert {"manifest.note", "manifest.json", "events.jsonl", "checkpoints.jsonl",
            "proofs/inclusion.jsonl", "proofs/consistency.jsonl", "keys/log.pub",
            "keys/producers.json", "report/accountability.json",
            "report/accountability.html"} <= set(parts)
    assert len(parts["events.jsonl"].splitlines()) == 7
    assert b"<html" in parts["report/accountability.html"]
    code, out = verify_cli(path, "--log-key", api.world.ledger.verifier_key)
    assert code == 0, out
    assert "OK" in out
    code, out = verify_cli(path, "--json")
    doc = orjson.loads(out)
    assert doc["ok"] and doc["controllers"][CONTROLLER]["size"] == 7


def test_time_range_bundle(api: Api, tmp_path: Path) -> None:
    """A period bundle: every leaf between the edge checkpoints, the period a view."""
    clock = api.world.clock
    api.world.ledger.flush()
    start = clock.now() + timedelta(hours=1, minutes=30)
    batches = []
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        batch = [api.event() for _ in range(4)]
        assert {r["status"] for r in api.post(batch).json()} == {"accepted"}
        api.world.ledger.flush()
        batches.append({e["event_id"] for e in batch})
    end = start + timedelta(hours=1)
    path = fetch(api, tmp_path, **{"from": start.isoformat(), "to": end.isoformat()})
    parts = members(path.read_bytes())
    records = [orjson.loads(line) for line in parts["events.jsonl"].splitlines()]
    ids = {r["event_id"] for r in records}
    indexes = [r["index"] for r in records]
    assert indexes == list(range(indexes[0], indexes[-1] + 1))  # contiguous
    assert batches[1] <= ids and not batches[0] & ids  # the start edge is after batch 0
    context = [orjson.loads(line) for line in parts["context.jsonl"].splitlines()]
    assert {r["event"]["type"] for r in context} >= {"controller.registered"}
    manifest = orjson.loads(parts["manifest.json"])
    assert manifest["period_events"] == 4 and manifest["latest"] == 19
    code, out = verify_cli(path, "--log-key", api.world.ledger.verifier_key)
    assert code == 0, out
    first, last = indexes[0], indexes[-1]
    assert f"complete: leaves {first}..{last} of tree size {last + 1}" in out
    assert f"period {manifest['from']} .. {manifest['to']}" in out
    assert "4 in the period" in out and "WARNING" not in out
    code, out = verify_cli(path)
    assert code == 0 and "WARNING: log key taken from the bundle" in out


def test_unzipped_and_rezipped_bundle_verifies(api: Api, tmp_path: Path) -> None:
    import shutil
    import subprocess

    path = fetch(api, tmp_path)
    unzipped = tmp_path / "x"
    shutil.unpack_archive(path, unzipped, "zip")
    code, out = verify_cli(unzipped)
    assert code == 0, out
    again = tmp_path / "again.zip"
    subprocess.run(["zip", "-qr", str(again), "."], cwd=unzipped, check=True)
    with zipfile.ZipFile(again) as zf:
        assert any(n.endswith("/") for n in zf.namelist())  # directory entries present
    code, out = verify_cli(again)
    assert code == 0, out


def test_no_other_tenant_in_bundle(api: Api, tmp_path: Path) -> None:
    parts = members(fetch(api, tmp_path).read_bytes())
    for name, data in parts.items():
        assert OTHER.encode() not in data, name


TAMPER_EXPECT = {  # member -> a word the verifier's output must contain
    "manifest.note": "manifest.note",
    "manifest.json": "manifest.json",
    "keys/log.pub": "manifest.note",  # a changed key no longer verifies the signatures
    "keys/producers.json": "keys/producers.json",
    "events.jsonl": "events.jsonl",
    "context.jsonl": "context.jsonl",
    "cited.jsonl": "cited.jsonl",
    "proofs/cited.jsonl": "proofs/cited.jsonl",
    "checkpoints.jsonl": "checkpoints.jsonl",
    "proofs/range.json": "proofs/range.json",
    "proofs/inclusion.jsonl": "proofs/inclusion.jsonl",
    "proofs/consistency.jsonl": "proofs/consistency.jsonl",
    "consistency.json": "consistency.json",
    "report/accountability.json": "report/accountability.json",
    "report/accountability.html": "report/accountability.html",
    "README.txt": "README.txt",
}


@pytest.fixture
def bundle(api: Api) -> bytes:
    for _ in range(3):  # several checkpoints, so there are consistency proofs
        api.post([api.event() for _ in range(5)])
        api.world.ledger.flush()
    return api.get(f"/v1/controllers/{CONTROLLER}/evidence").content


def test_every_member_is_tamper_evident(bundle: bytes, tmp_path: Path) -> None:
    parts = members(bundle)
    assert set(parts) == set(TAMPER_EXPECT)
    assert orjson.loads(parts["proofs/consistency.jsonl"].splitlines()[0])["proof"]
    for name, where in TAMPER_EXPECT.items():
        for position in (len(parts[name]) // 2, len(parts[name]) // 3):
            data = bytearray(parts[name] or b"{}")  # an empty member gains bytes
            data[position] ^= 0x01 if parts[name] else 0
            path = tmp_path / "tampered.zip"
            path.write_bytes(rezip({**parts, name: bytes(data)}))
            code, out = verify_cli(path)
            assert code == 1, (name, position, out)
            assert where in out, (name, out)


def test_altered_event_is_named(bundle: bytes, tmp_path: Path) -> None:
    parts = members(bundle)
    lines = parts["events.jsonl"].splitlines()
    victim = orjson.loads(lines[4])
    lines[4] = lines[4].replace(b"newsletter", b"newsletteR")
    path = tmp_path / "t.zip"
    path.write_bytes(rezip({**parts, "events.jsonl": b"\n".join(lines) + b"\n"}))
    source = BundleSource(path)
    report = verify_source(source, source.log_keys)  # keys from the bundle
    named = {p.problem for p in report.problems if p.event_id == victim["event_id"]}
    assert {"bad_signature", "leaf_hash_mismatch"} <= named
    assert "range_root_mismatch" in {p.problem for p in report.problems}
    code, out = verify_cli(path)
    assert code == 1 and victim["event_id"] in out


def test_removed_event_and_proof_swap_are_found(bundle: bytes, tmp_path: Path) -> None:
    parts = members(bundle)
    lines = parts["events.jsonl"].splitlines()
    gone = orjson.loads(lines[3])["event_id"]
    del lines[3]
    source = BundleSource(rezip({**parts, "events.jsonl": b"\n".join(lines)}))
    report = verify_source(source, source.log_keys)
    problems = {p.problem for p in report.problems}
    assert {"missing_event", "range_root_mismatch"} <= problems, problems
    assert gone not in {orjson.loads(x)["event_id"] for x in lines}


def test_pinned_wrong_log_key_fails(api: Api, bundle: bytes, tmp_path: Path) -> None:
    from ledger.checkpoint import verifier_key
    from ledger.signing import generate_key, public_key_bytes

    path = tmp_path / "b.zip"
    path.write_bytes(bundle)
    wrong = verifier_key("auditledger", public_key_bytes(generate_key()))
    code, out = verify_cli(path, "--log-key", wrong)
    assert code == 1 and "bundle_manifest: manifest.note" in out


def test_build_bundle_from_a_bare_log(api: Api) -> None:
    from ledger.signing import load_private_key

    ledger = api.world.ledger
    ledger.flush()
    data = build_bundle(ledger.log, CONTROLLER, signing_key=load_private_key(
        ledger.cfg.log_key_file), log_keys=[ledger.verifier_key])
    assert verify_source(BundleSource(data), [ledger.verifier_key]).ok


def test_evidence_bad_range(api: Api) -> None:
    r = api.get(f"/v1/controllers/{CONTROLLER}/evidence",
                params={"from": "2026-02-01", "to": "2026-01-01"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_range"


def test_whole_log_bundle_missing_an_event_resigned_is_refused(api: Api, bundle: bytes
                                                              ) -> None:
    """What an independent verifier found accepted before format 2: an event dropped from a
    whole-log bundle and the manifest re-signed with the log key."""
    from ledger.signing import load_private_key
    from tests.core.test_bundle_tamper import resign

    parts = members(bundle)
    assert orjson.loads(parts["manifest.json"])["from"] is None  # the whole log
    lines = parts["events.jsonl"].splitlines(keepends=True)
    forged = resign({**parts, "events.jsonl": b"".join(lines[:5] + lines[6:])},
                    load_private_key(api.world.ledger.cfg.log_key_file))
    source = BundleSource(rezip(forged))
    problems = {p.problem for p in verify_source(source, [api.world.ledger.verifier_key])
                .problems}
    assert {"missing_event", "range_root_mismatch"} <= problems, problems


def test_report_states_the_period_and_cites_only_bundled_events(api: Api) -> None:
    r = api.get(f"/v1/controllers/{CONTROLLER}/evidence",
                params={"from": "2026-11-20", "to": "2026-11-21"})
    assert r.status_code == 200
    parts = members(r.content)
    report = orjson.loads(parts["report/accountability.json"])
    assert report["period"] == {"from": "2026-11-20T00:00:00.000Z",
                                "to": "2026-11-21T00:00:00.000Z"}
    source = BundleSource(r.content)
    assert verify_source(source, [api.world.ledger.verifier_key]).ok
