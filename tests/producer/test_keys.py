"""The keys a producer holds: the exported subject key (pseudonyms) and data keys for
sealed fields, which stay in memory and never reach the outbox."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.client import Producer
from ledger.config import Config
from ledger.encoding import b64url
from ledger.envelope import pseudonym
from ledger.keystore import open_keystore
from ledger.producer.keys import SubjectKeyFileError
from ledger.sealing import view
from tests.conftest import CLI, CONTROLLER, cli_json, free_port
from tests.serving import make_data

CONSENT = {"purposes": ["newsletter"], "method": "web_form", "notice_version": "v1"}


def test_subject_key_export_for_a_producer(tmp_path: Path) -> None:
    world = make_data(tmp_path)
    data, out = world["data"], tmp_path / "crm.subject-key"
    doc = cli_json("subject", "export-key", "--data", str(data), "--controller", CONTROLLER,
                   "--out", str(out))
    assert "key" not in doc and doc["fingerprint"].startswith("sk-")
    assert out.stat().st_mode & 0o777 == 0o600
    store = open_keystore(Config.load(data))
    try:
        key = store.subject_key(CONTROLLER)
    finally:
        store.close()
    assert orjson.loads(out.read_bytes())["key"] == b64url(key)

    p = Producer(producer="crm", key=world["key"], outbox=None, start=False,
                 url=f"http://127.0.0.1:{free_port()}", api_key="unused",
                 subject_key_file=out)
    try:
        assert (p.controller, p.region) == (CONTROLLER, "NO")
        env = p.build("consent.given", CONSENT, identifier="912 34 567")  # a Norwegian number
        assert env["subject"] == pseudonym(key, "+4791234567")
    finally:
        p.close()

    # the trail says an export happened, and holds nothing personal or secret
    trail = (data / "keys" / "subject-key-exports.jsonl").read_text().splitlines()
    assert [sorted(orjson.loads(line)) for line in trail] == [["at", "controller",
                                                              "fingerprint"]]
    again = subprocess.run([*CLI, "subject", "export-key", "--data", str(data), "--controller",
                            CONTROLLER, "--out", str(out)], capture_output=True, text=True)
    assert again.returncode == 2 and "exists" in again.stderr
    unknown = subprocess.run([*CLI, "subject", "export-key", "--data", str(data),
                              "--controller", "SE-5560000000", "--out",
                              str(tmp_path / "x")], capture_output=True, text=True)
    assert unknown.returncode == 2 and "not registered" in unknown.stderr
    assert not (tmp_path / "x").exists()
    os.chmod(out, 0o644)
    with pytest.raises(SubjectKeyFileError, match="readable by others"):
        Producer(producer="crm", key=world["key"], outbox=None, start=False,
                 url="http://127.0.0.1:1", api_key="unused", subject_key_file=out)


def test_sealed_fields_with_the_local_key_store(served: dict[str, Any],
                                                tmp_path: Path) -> None:
    store = open_keystore(Config.load(served["data"]))
    outbox = tmp_path / "outbox.sqlite"
    p = Producer(producer="crm", key=served["key"], outbox=outbox, controller=CONTROLLER,
                 url=served["url"], api_key=served["producer"], subject_key=b"k" * 32,
                 data_keys=store)
    try:
        env = p.build("consent.given", CONSENT, identifier="ann@example.org",
                      sealed={"email": "ann@example.org"})
        p.emit_envelopes([env])
        p.flush(timeout=60)
        assert p.receipt(env["event_id"])["status"] == "accepted"  # type: ignore[index]
        assert view(env, store, open_=True)["fields"] == {"email": "ann@example.org"}
        kid, key = store.data_key(CONTROLLER, env["subject"])
        assert env["sealed"]["kid"] == kid
    finally:
        p.close()
        store.close()
    kept = b"".join(f.read_bytes() for f in tmp_path.glob("outbox.sqlite*"))
    assert env["event_id"].encode() in kept  # the receipt
    for secret in (key, b64url(key).encode(), b"ann@example.org"):
        assert secret not in kept
