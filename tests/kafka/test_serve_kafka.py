"""`auditledger serve` on a Kafka ledger: producers that write straight to the intake topic
are checked, sequenced and readable through the API; refusals land on the rejected topic."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer

from ledger.envelope import complete, pseudonym
from ledger.signing import load_private_key
from tests.conftest import CLI, CONTROLLER, cli_json, free_port, wait_until_healthy

pytestmark = pytest.mark.kafka




def test_serve_sequences_the_intake_topic(tmp_path: Path, kafka_bootstrap: str) -> None:
    prefix = f"srv-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AUDITLEDGER_KAFKA_TOPIC_PREFIX": prefix}

    def run(*args: str) -> dict:
        return cli_json(*args, env=env)

    data = tmp_path / "data"
    admin = run("init", "--data", str(data), "--kafka", kafka_bootstrap)["admin_api_key"]
    run("controller", "register", "--data", str(data), "--id", CONTROLLER, "--name", "B AS",
        "--country", "NO", "--tz", "Europe/Oslo")
    key_file = tmp_path / "web.pem"
    pub = run("keygen", "--out", str(key_file))["public_key"]
    run("producer", "register", "--data", str(data), "--controller", CONTROLLER,
        "--id", "web", "--public-key", pub, "--types", "consent.*")
    port = free_port()
    proc = subprocess.Popen([*CLI, "serve", "--data", str(data), "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, proc, timeout=60)

        key = load_private_key(key_file)
        good = complete({"type": "consent.given", "controller": CONTROLLER,
                         "subject": pseudonym(b"k" * 32, "ann@example.org"),
                         "data": {"purposes": ["newsletter"], "method": "web_form",
                                  "notice_version": "v1"}}, key, "web")
        forged = dict(good, event_id=str(uuid.uuid4()))  # signature no longer matches
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all",
                                 enable_idempotence=True)
        for env_ in (good, forged):
            producer.send(f"{prefix}.intake.v1", orjson.dumps(env_), key=CONTROLLER.encode())
        producer.flush()
        producer.close()

        headers = {"Authorization": f"Bearer {admin}"}
        deadline = time.monotonic() + 60
        seen: list[str] = []
        while time.monotonic() < deadline:
            resp = httpx.get(f"{url}/v1/controllers/{CONTROLLER}/events", headers=headers)
            assert resp.status_code == 200, resp.text
            seen = [e["event_id"] for e in resp.json()["items"]]
            if good["event_id"] in seen:
                break
            time.sleep(0.5)
        assert good["event_id"] in seen
        assert forged["event_id"] not in seen

        consumer = KafkaConsumer(f"{prefix}.rejected.v1", bootstrap_servers=kafka_bootstrap,
                                 auto_offset_reset="earliest", isolation_level="read_committed",
                                 consumer_timeout_ms=15000)
        rejected = [(orjson.loads(m.value), dict(m.headers)) for m in consumer]
        consumer.close()
        assert [r["event_id"] for r, _ in rejected] == [forged["event_id"]]
        assert rejected[0][1]["code"] == b"bad_signature"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
