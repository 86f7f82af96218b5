"""Erasure end to end on the Kafka log (real broker): sealed events stored, bad sealed
fields rejected while the batch's good events are kept, ``auditledger subject erase``,
``auditledger verify`` on the log and on evidence bundles made before and after, a
restored old key-store backup erased again on open, a wrong KEK refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.clock import FixedClock
from ledger.kek import KekError, new_kek_text
from ledger.keystore import Destroyed, open_keystore
from ledger.sealing import view
from ledger.service import Ledger, init_data_dir
from ledger.signing import generate_key, public_key_text
from tests.conftest import CLI, CONTROLLER, NOW, World
from tests.erasure.conftest import partial, psn, sealed_event, sign

pytestmark = pytest.mark.kafka


def cli(*args: str, env: dict[str, str] | None = None, code: int = 0) -> str:
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == code, (args, proc.stdout, proc.stderr)
    return proc.stdout if code == 0 else proc.stderr


def bundle(ledger: Ledger, token: str, path: Path) -> Path:
    with TestClient(create_app(ledger)) as client:
        r = client.get(f"/v1/controllers/{CONTROLLER}/evidence",
                       headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    path.write_bytes(r.content)
    return path


def test_erasure_end_to_end_on_kafka(tmp_path: Path, kafka_bootstrap: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"erasure-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("AUDITLEDGER_KAFKA_TOPIC_PREFIX", prefix)
    data = tmp_path / "ledger"
    cfg, token = init_data_dir(data, kafka=kafka_bootstrap)
    clock = FixedClock(NOW)
    ledger = Ledger(cfg, clock=clock, verifier_workers=0)
    ledger.register_controller(CONTROLLER, {"name": "Bedre Bedrift AS", "country": "NO",
                                            "timezone": "Europe/Oslo"})
    key = generate_key()
    assert ledger.register_producer(CONTROLLER, "crm", public_key_text(key),
                                    ["*"]).status == "accepted"
    world = World(data, ledger, clock, key, token)

    alice, bob = psn(ledger, "alice@example.org"), psn(ledger, "bob@example.org")
    bad = partial(world, alice)
    bad["sealed"] = {"kid": "dk_unknown", "nonce": "bm9uY2Vub25jZW5v", "ct": "eHl6"}
    results = ledger.submit([sealed_event(world, alice), sign(world, bad),
                             sealed_event(world, bob), sealed_event(world, alice)])
    assert [(r.status, r.code) for r in results] == [
        ("accepted", None), ("rejected", "sealed_invalid"), ("accepted", None),
        ("accepted", None)]
    assert [r.index for r in results if r.index is not None] == [2, 3, 4]
    (kid,) = ledger.keys.subject_state(CONTROLLER, alice).live
    first = ledger.log.lookup(CONTROLLER, [results[0].event_id or ""])[
        results[0].event_id or ""].envelope()
    assert view(first, ledger.keys, open_=True)["fields"] == {"email": "alice@example.org"}
    ledger.flush()
    before = bundle(ledger, token, tmp_path / "before.zip")
    backup = tmp_path / "keystore-old.sqlite"
    ledger.keys.backup(backup)
    ledger.close()

    # the erasure, by the command line, on the Kafka ledger
    erased = orjson.loads(cli("subject", "erase", "--data", str(data), "--controller",
                              CONTROLLER, "--subject", alice, "--reason", "Art. 17",
                              "--json"))
    assert erased["status"] == "accepted" and erased["key_ids"] == [kid]
    again = cli("subject", "erase", "--data", str(data), "--controller", CONTROLLER,
                "--subject", alice, code=2)
    assert again.startswith("error: already_erased: ")
    report = orjson.loads(cli("verify", str(data), "--json"))
    assert report["ok"] and report["controllers"][CONTROLLER]["size"] == 6

    clock.advance(timedelta(minutes=1))
    ledger = Ledger(cfg, clock=clock, verifier_workers=0)
    assert isinstance(ledger.keys.key(CONTROLLER, kid), Destroyed)
    assert view(first, ledger.keys, open_=True)["state"] == "erased"
    assert ledger.keys.subject_state(CONTROLLER, bob).live  # bob untouched
    after = bundle(ledger, token, tmp_path / "after.zip")
    vkey = ledger.verifier_key
    ledger.close()
    for path in (before, after):
        doc = orjson.loads(cli("verify", str(path), "--log-key", vkey, "--json"))
        assert doc["ok"] and doc["problems"] == [], path

    # an old key-store backup restored: the erasure is applied again when a ledger opens
    for suffix in ("", "-wal", "-shm"):
        Path(f"{cfg.keystore_db}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, cfg.keystore_db)
    restored = open_keystore(cfg)
    assert restored.subject_state(CONTROLLER, alice).live == [kid]
    restored.close()
    ledger = Ledger(cfg, clock=clock, verifier_workers=0)
    try:
        assert isinstance(ledger.keys.key(CONTROLLER, kid), Destroyed)
    finally:
        ledger.close()

    # a wrong KEK at start
    monkeypatch.setenv("AUDITLEDGER_KEK", new_kek_text())
    with pytest.raises(KekError) as exc:
        Ledger(cfg, clock=clock, verifier_workers=0)
    assert exc.value.code == "kek_mismatch"
