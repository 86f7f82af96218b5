"""The forms' answers without a browser: read-your-writes while the read side is behind
("recorded, projecting…" and a reload until it has caught up), then the new state."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from api.readside import ReadSide
from ledger.apikeys import ApiKeyStore
from tests.conftest import CONTROLLER, make_world


def test_the_case_page_says_projecting_until_the_read_side_has_the_event(
        tmp_path: Path) -> None:
    world = make_world(tmp_path)
    # A read side that a worker would follow, but none runs: it applies only when told.
    read_side = ReadSide(world.ledger, world.clock, follow=True)
    read_side.step()
    try:
        app = create_app(world.ledger, keys=ApiKeyStore(world.ledger.cfg.auth_db),
                         read_side=read_side)
        client = TestClient(app, follow_redirects=False)
        assert client.post("/signin", data={"api_key": world.admin_token,
                                            "next": "/"}).status_code == 303
        page = client.get(f"/c/{CONTROLLER}/record").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]  # type: ignore[index]
        r = client.post(f"/c/{CONTROLLER}/record/breach/detected", data={
            "csrf_token": token, "breach_id": "br-http-1", "detected_at": "2026-05-14 09:00",
            "description": "printout left on a train"})
        assert r.status_code == 303
        target = r.headers["location"]
        assert target.startswith(f"/c/{CONTROLLER}/record/breach/br-http-1?recorded=")

        behind = client.get(target)  # waits CATCH_UP_SECONDS, then says so
        assert behind.status_code == 200
        assert "projecting" in behind.text and behind.headers["refresh"] == "2"
        assert 'id="case-state"' not in behind.text

        read_side.step()  # the worker's turn
        caught_up = client.get(target)
        assert caught_up.status_code == 200 and "refresh" not in caught_up.headers
        assert "Recorded: event" in caught_up.text and 'id="case-state"' in caught_up.text
    finally:
        read_side.close()
        world.ledger.close()
