"""An API around a fixture ledger with two tenants and one key per role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from api.app import create_app
from ledger.apikeys import ApiKeyStore
from ledger.signing import generate_key, public_key_text
from tests.conftest import CONTROLLER, OTHER, World, make_world


@dataclass
class Api:
    world: World
    client: TestClient
    tokens: dict[str, str]  # admin, auditor_a, auditor_b, producer_a, producer_b
    other_key: Ed25519PrivateKey  # producer "hr" of OTHER
    ids: dict[str, list[str]] = field(default_factory=dict)  # event ids by controller

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def get(self, path: str, who: str = "auditor_a", **kw: Any) -> Any:
        return self.client.get(path, headers=self.auth(who), **kw)

    def post(self, body: Any, who: str = "producer_a", **kw: Any) -> Any:
        return self.client.post("/v1/events", json=body, headers=self.auth(who), **kw)

    def event(self, controller: str = CONTROLLER, **kw: Any) -> dict[str, Any]:
        if controller == OTHER:
            kw.setdefault("producer", "hr")
            kw.setdefault("key", self.other_key)
        return self.world.event(controller=controller, **kw)


def make_api(tmp: Path, **app_kw: Any) -> tuple[Api, ApiKeyStore]:
    world = make_world(tmp)
    ledger = world.ledger
    ledger.register_controller(OTHER, {"name": "Andet Firma ApS", "country": "DK",
                                       "timezone": "Europe/Copenhagen"})
    other_key = generate_key()
    assert ledger.register_producer(OTHER, "hr", public_key_text(other_key), ["*"]).status \
        == "accepted"
    store = ApiKeyStore(ledger.cfg.auth_db)
    tokens = {
        "admin": world.admin_token,
        "auditor_a": store.create("auditor", (CONTROLLER,))[0],
        "auditor_b": store.create("auditor", (OTHER,))[0],
        "producer_a": store.create("producer", (CONTROLLER,))[0],
        "producer_b": store.create("producer", (OTHER,))[0],
    }
    client = TestClient(create_app(ledger, keys=store, **app_kw))
    api = Api(world, client, tokens, other_key)
    for controller in (CONTROLLER, OTHER):
        batch = [api.event(controller) for _ in range(5)]
        results = ledger.submit(batch)
        assert all(r.status == "accepted" for r in results), results
        api.ids[controller] = [r.event_id for r in results]
    ledger.flush()
    return api, store


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a, store = make_api(tmp_path)
    with a.client:
        yield a
    store.close()
    a.world.ledger.close()
