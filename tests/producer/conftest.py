"""A real ``auditledger serve`` for the producer-client tests, and the Kafka fixtures
(tests/kafka/conftest.py) for its Kafka transport."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONTROLLER, cli_json
from tests.kafka.conftest import _kafka_local_broker, kafka_bootstrap, kafka_broker  # noqa: F401
from tests.serving import Serve, make_data


def log_key(data: Path) -> str:
    return (data / "keys" / "log.pub").read_text().strip()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """``make_data`` (CONTROLLER, producer ``crm`` for ``consent.*``) served by a real
    ``auditledger serve``: ``{"data", "key", "producer", "admin", "serve", "url",
    "log_key", "auditor"}``."""
    world = make_data(tmp_path)
    world["auditor"] = cli_json("apikey", "create", "--data", str(world["data"]), "--role",
                                "auditor", "--controller", CONTROLLER)["api_key"]
    serve = Serve(world["data"]).start()
    try:
        yield {**world, "serve": serve, "url": serve.url, "log_key": log_key(world["data"])}
    finally:
        serve.stop()
