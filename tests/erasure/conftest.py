"""Helpers of the erasure suites: sealed events, rights requests, pseudonyms from the
ledger's own key store (so look-ups and erasures find them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.clock import format_rfc3339
from ledger.envelope import complete, new_event_id
from ledger.sealing import seal_envelope
from ledger.service import Ledger
from tests.api.conftest import Api, make_api
from tests.conftest import CONTROLLER, World

# The real-broker fixtures of tests/kafka, for test_erasure_kafka.py.
from tests.kafka.conftest import _kafka_local_broker, kafka_bootstrap  # noqa: F401

CONSENT = {"purposes": ["newsletter"], "method": "web_form", "notice_version": "v1"}


def psn(ledger: Ledger, identifier: str, controller: str = CONTROLLER) -> str:
    """The pseudonym the ledger computes for ``identifier`` (its key store's subject key)."""
    return ledger.lookup_subject(controller, identifier)["subject"]


def partial(world: World, subject: str | None, type_: str = "consent.given",
            data: dict[str, Any] | None = None, controller: str = CONTROLLER
            ) -> dict[str, Any]:
    env: dict[str, Any] = {"type": type_, "controller": controller,
                           "data": dict(data or CONSENT), "event_id": new_event_id(),
                           "occurred_at": format_rfc3339(world.clock.now())}
    if subject is not None:
        env["subject"] = subject
    return env


def sign(world: World, env: dict[str, Any], producer: str = "crm", key: Any = None
         ) -> dict[str, Any]:
    return complete(env, key or world.key, producer)


def sealed_event(world: World, subject: str, fields: dict[str, Any] | None = None,
                 **kw: Any) -> dict[str, Any]:
    """A consent with a sealed field under ``subject``'s data key, signed by ``crm``."""
    env = partial(world, subject, **kw)
    seal_envelope(env, fields or {"email": "alice@example.org"}, world.ledger.keys)
    return sign(world, env)


def rights(world: World, subject: str, request_id: str, type_: str = "received",
           right: str = "erasure") -> dict[str, Any]:
    at = format_rfc3339(world.clock.now())
    data: dict[str, Any] = {"request_id": request_id}
    if type_ == "received":
        data |= {"right": right, "received_at": at}
    elif type_ == "refused":
        data |= {"at": at, "reason": "manifestly unfounded"}
    return sign(world, partial(world, subject, f"rights_request.{type_}", data))


def accepted(ledger: Ledger, events: list[dict[str, Any]]) -> list[int]:
    """Submit; every event must be accepted; their leaf indexes."""
    results = ledger.submit(events)
    assert all(r.status == "accepted" for r in results), [r.to_dict() for r in results]
    return [r.index for r in results if r.index is not None]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """tests/api's app around a two-tenant fixture ledger (its ``api`` fixture, here)."""
    a, store = make_api(tmp_path)
    with a.client:
        yield a
    store.close()
    a.world.ledger.close()
