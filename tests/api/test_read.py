"""Auditor reads and tenant isolation."""

from __future__ import annotations

import re
from typing import Any

from tests.api.conftest import Api
from tests.conftest import CONTROLLER, OTHER

GHOST = "SE-5560000000"


def read_routes(api: Api) -> list[str]:
    """Every GET route under a controller, as the OpenAPI document lists them."""
    paths = api.client.get("/openapi.json").json()["paths"]
    routes = [p for p, ops in paths.items() if "get" in ops and "{controller}" in p]
    assert len(routes) >= 6
    return routes


def fill(path: str, controller: str, api: Api) -> tuple[str, dict[str, Any]]:
    """A concrete URL for ``path``: the path parameters, and required query parameters."""
    values = {
        "controller": controller,
        "event_id": (api.ids.get(controller) or ["00000000-0000-4000-8000-000000000000"])[0],
        "subject": "psn:abc",
        "level": "0", "index": "000.p/1",  # tlog: the first leaf's partial tile
    }
    url = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values.get(m.group(1), "x"), path)
    params = {"from": "1"} if path.endswith("/consistency") else {}
    return url, params


def test_every_read_route_hides_other_tenants(api: Api) -> None:
    """Controller B seen with a key for A is the same 404 as a controller that does not
    exist — status, code and detail (modulo the id itself) — on every read route."""
    for route in read_routes(api):
        own_url, params = fill(route, CONTROLLER, api)
        own = api.get(own_url, params=params)
        # its own controller is found (a 404 of another kind, e.g. no cosigned checkpoint
        # yet, is an answer about the controller, not "no such controller")
        assert own.status_code != 404 or own.json()["code"] != "not_found", (route, own.text)

        url, params = fill(route, OTHER, api)
        theirs = api.get(url, params=params)
        ghost = api.get(url.replace(OTHER, GHOST).replace(
            api.ids[OTHER][0], "00000000-0000-4000-8000-000000000000"), params=params)
        assert theirs.status_code == 404, (route, theirs.text)
        assert ghost.status_code == 404, (route, ghost.text)
        assert theirs.json()["code"] == ghost.json()["code"] == "not_found"
        assert theirs.json()["detail"].replace(OTHER, "C") == ghost.json()["detail"].replace(
            GHOST, "C"), route
        assert theirs.headers.get("content-type") == ghost.headers.get("content-type")
        # And B's own auditor does see it.
        mine = api.get(url, who="auditor_b", params=params)
        assert mine.status_code != 404 or mine.json()["code"] != "not_found", (route, mine.text)


def test_event_of_other_tenant_under_own_path_is_404(api: Api) -> None:
    r = api.get(f"/v1/controllers/{CONTROLLER}/proofs/inclusion/{api.ids[OTHER][0]}")
    ghost = api.get(f"/v1/controllers/{CONTROLLER}/proofs/inclusion/"
                    "00000000-0000-4000-8000-000000000000")
    assert r.status_code == ghost.status_code == 404


def test_producer_key_cannot_read(api: Api) -> None:
    r = api.get(f"/v1/controllers/{CONTROLLER}/events", who="producer_a")
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_list_controllers(api: Api) -> None:
    mine = api.get("/v1/controllers").json()["items"]
    assert [c["controller"] for c in mine] == [CONTROLLER]
    assert mine[0]["name"] == "Bedre Bedrift AS" and mine[0]["size"] == 7
    every = api.get("/v1/controllers", who="admin").json()["items"]
    assert sorted(c["controller"] for c in every) == sorted([CONTROLLER, OTHER])


def test_events_pagination_and_filters(api: Api) -> None:
    api.post([api.event() for _ in range(20)])
    url = f"/v1/controllers/{CONTROLLER}/events"
    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 6}
        if cursor:
            params["cursor"] = cursor
        page = api.get(url, params=params).json()
        seen += [e["index"] for e in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(27)) and pages == 5
    first = api.get(url, params={"limit": 1}).json()["items"][0]
    assert first["type"] == "controller.registered" and first["leaf_hash"]
    assert {"received_at", "index", "sig", "data"} <= set(first)

    admin = api.get(url, params={"type": "producer.*"}).json()["items"]
    assert [e["type"] for e in admin] == ["producer.registered"]
    crm = api.get(url, params={"producer": "crm", "limit": 1000}).json()["items"]
    assert len(crm) == 25
    subject = crm[0]["subject"]
    assert len(api.get(url, params={"subject": subject, "limit": 1000}).json()["items"]) == 25
    assert api.get(url, params={"from": "2030-01-01"}).json()["items"] == []
    assert len(api.get(url, params={"to": "2030-01-01", "limit": 1000}).json()["items"]) == 27


def test_events_bad_parameters(api: Api) -> None:
    url = f"/v1/controllers/{CONTROLLER}/events"
    r = api.get(url, params={"cursor": "garbage!"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_cursor"
    r = api.get(url, params={"limit": 0})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    r = api.get(url, params={"from": "yesterday"})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    r = api.get(url, params={"type": "nope.*"})
    assert r.status_code == 422
