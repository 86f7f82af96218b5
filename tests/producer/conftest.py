"""A real ``auditledger serve`` for the producer-client tests (its Kafka transport's
tests are tests/kafka/test_producer_kafka.py, beside the broker fixtures)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONTROLLER, cli_json
from tests.producer.crash import log_key
from tests.serving import Serve, make_data


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
