"""infra/docker-compose.yml describes the cluster the tests run locally.

There is no Docker engine here, so the compose file cannot be started; this checks what
can be checked without one: it parses as YAML, its Kafka is three KRaft nodes (each broker
and controller, one static quorum of all three) of the Kafka version infra/kafka/pom.xml
fetches, and it sets every durability setting to the value the local cluster of
``infra/kafka/broker start --brokers 3`` uses (``CLUSTER_DURABILITY`` in that script).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "infra" / "docker-compose.yml"
BROKER_SCRIPT = REPO / "infra" / "kafka" / "broker"


def _broker_script() -> ModuleType:
    """infra/kafka/broker as a module (it has no .py suffix)."""
    loader = importlib.machinery.SourceFileLoader("infra_kafka_broker", str(BROKER_SCRIPT))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def _kafka_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in doc["services"].items()
            if str(svc.get("image", "")).startswith("apache/kafka:")}


def _env_name(prop: str) -> str:
    """server.properties key -> the apache/kafka image's environment variable."""
    return "KAFKA_" + prop.upper().replace(".", "_")


def test_compose_kafka_is_three_kraft_nodes_of_the_tested_version() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    kafka = _kafka_services(doc)
    assert len(kafka) == 3, sorted(kafka)
    pom = (REPO / "infra" / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert version, "no kafka.version in pom.xml"
    ids = {}
    for name, svc in kafka.items():
        assert svc["image"] == f"apache/kafka:{version.group(1)}", (name, svc["image"])
        env = svc["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller", name
        ids[int(env["KAFKA_NODE_ID"])] = svc["hostname"]
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{svc['hostname']}:9092"
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"]), env["CLUSTER_ID"]
    assert sorted(ids) == [1, 2, 3]
    # One static quorum of all three controllers, the same on every node.
    for name, svc in kafka.items():
        quorum = svc["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"]
        voters = dict(v.split("@") for v in quorum.split(","))
        assert voters == {str(i): f"{h}:9093" for i, h in ids.items()}, (name, quorum)
    # One cluster id for all three nodes.
    assert len({svc["environment"]["CLUSTER_ID"] for svc in kafka.values()}) == 1
    # The ledger containers are pointed at all three.
    ledger_env = doc["x-ledger-common"]["environment"]
    assert sorted(ledger_env["AUDITLEDGER_KAFKA"].split(",")) == sorted(
        f"{h}:9092" for h in ids.values())


def test_compose_and_the_local_cluster_name_the_same_durability_settings() -> None:
    settings = _broker_script().CLUSTER_DURABILITY
    assert settings["default.replication.factor"] == "3"
    assert settings["min.insync.replicas"] == "2"
    doc = yaml.safe_load(COMPOSE.read_text())
    for name, svc in _kafka_services(doc).items():
        env = {k: str(v).lower() for k, v in svc["environment"].items()}
        for prop, value in settings.items():
            assert env.get(_env_name(prop)) == value, (name, prop, env.get(_env_name(prop)))
