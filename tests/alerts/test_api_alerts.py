"""The alert routes: webhooks CRUD (admin), the outbox listing and dead letters scoped by
key, the SSE stream with Last-Event-ID, and the real queue length in /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from ledger.clock import format_rfc3339
from projections.alerts.delivery import Deliverer, RetryPolicy
from projections.alerts.scheduler import AlertScheduler
from tests.api.conftest import Api, make_api
from tests.conftest import CONTROLLER, OTHER


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a, store = make_api(tmp_path)
    with a.client:
        yield a
    store.close()
    a.world.ledger.close()


def breach_now_past_48h(api: Api, controller: str = CONTROLLER, bid: str = "b1") -> None:
    aware = api.world.clock.now() - timedelta(hours=48, seconds=1)
    ev = api.event(controller, type_="breach.aware", subject=None,
                   data={"breach_id": bid, "aware_at": format_rfc3339(aware)})
    who = "producer_a" if controller == CONTROLLER else "producer_b"
    assert api.post([ev], who=who).json()[0]["status"] == "accepted"


def schedule(api: Api) -> list[dict]:
    state = api.client.app.state
    state.read_side.step()
    return AlertScheduler(state.read_side.store, state.alerts.outbox, api.world.clock).tick()


def breaches(r) -> list[dict]:  # type: ignore[no-untyped-def]
    assert r.status_code == 200, r.text
    return [a for a in r.json()["items"] if a["kind"] == "breach"]


def sse_events(text: str) -> list[dict]:
    out = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines()
                     if ": " in line and not line.startswith(":"))
        if "data" in lines:
            out.append({"id": lines["id"], "event": lines["event"],
                        "data": orjson.loads(lines["data"])})
    return out


def test_webhooks_admin_only_secret_once(api: Api):
    url = f"/v1/controllers/{CONTROLLER}/webhooks"
    r = api.client.post(url, json={"url": "https://hooks.example/x"}, headers=api.auth("admin"))
    assert r.status_code == 201, r.text
    hook = r.json()
    assert hook["secret"].startswith("whsec_") and hook["controller"] == CONTROLLER
    listed = api.get(url, who="admin").json()["items"]
    assert listed == [{k: hook[k] for k in ("id", "controller", "kind", "url", "created_at")}]
    assert hook["kind"] == "webhook"
    assert api.client.post(url, json={"url": "https://x"}, headers=api.auth("auditor_a")
                           ).status_code == 403
    for bad in ("ftp://x", "https://", "/relative", "https://a b/c", "x" * 2001):
        r = api.client.post(url, json={"url": bad}, headers=api.auth("admin"))
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", bad
    schema = api.client.get("/openapi.json").json()["components"]["schemas"]["WebhookIn"]
    assert schema["properties"]["url"]["pattern"] and "422" in schema[
        "properties"]["url"]["description"]
    assert api.get("/v1/controllers/XX-0/webhooks", who="admin").status_code == 404
    assert api.client.delete(f"{url}/{hook['id']}", headers=api.auth("admin")).status_code == 204
    assert api.client.delete(f"{url}/{hook['id']}", headers=api.auth("admin")).status_code == 404
    assert api.get(url, who="admin").json()["items"] == []


def test_alerts_listing_scoped_dead_letters_and_metrics(api: Api):
    hook = api.client.post(f"/v1/controllers/{CONTROLLER}/webhooks",
                           json={"url": "http://127.0.0.1:9/down"},
                           headers=api.auth("admin")).json()
    breach_now_past_48h(api)
    breach_now_past_48h(api, OTHER, "b9")
    emitted = [a for a in schedule(api) if a["kind"] == "breach"]  # (findings too)
    assert {(a["controller"], a["threshold"]) for a in emitted} == {
        (CONTROLLER, "48h"), (OTHER, "48h")}
    mine = breaches(api.get("/v1/alerts", params={"state": "emitted"}))
    assert [(a["controller"], a["case"]) for a in mine] == [(CONTROLLER, "b1")]
    assert mine[0]["deliveries"][0]["sink"] == f"webhook:{hook['id']}"
    assert len(api.get("/v1/alerts", params={"state": "pending"}).json()["items"]) == 3
    assert api.get("/v1/alerts", params={"controller": OTHER}).status_code == 404
    assert len(breaches(api.get("/v1/alerts", who="admin", params={"state": "emitted"}))) == 2
    assert api.get("/v1/alerts", params={"state": "bogus"}).status_code == 422  # enum
    metrics = api.client.get("/metrics").text
    queued = len(api.get("/v1/alerts", params={"state": "undelivered"}).json()["items"])
    assert queued >= 1 and f"auditledger_alert_queue_length {queued}" in metrics
    st = api.client.app.state
    Deliverer(st.alerts.outbox, api.world.clock, RetryPolicy(max_attempts=1)).run_once()
    (dead,) = breaches(api.get("/v1/alerts", params={"state": "dead"}))
    assert dead["id"] == mine[0]["id"] and dead["deliveries"][0]["state"] == "dead"
    assert "auditledger_alert_queue_length 0" in api.client.get("/metrics").text
    assert api.client.post(f"/v1/alerts/{dead['id']}/redeliver", headers=api.auth("auditor_a")
                           ).status_code == 403
    r = api.client.post(f"/v1/alerts/{dead['id']}/redeliver", headers=api.auth("admin"))
    assert r.json() == {"id": dead["id"], "requeued": 1}
    assert breaches(api.get("/v1/alerts", params={"state": "dead"})) == []


def test_sse_stream_scoped_and_resumable(api: Api):
    breach_now_past_48h(api, OTHER, "b9")
    breach_now_past_48h(api)
    schedule(api)
    api.world.clock.advance(timedelta(hours=12))
    schedule(api)  # the 60 h alerts
    r = api.get("/v1/alerts/stream", params={"after": 0, "idle_timeout": 0.3})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    got = [e for e in sse_events(r.text) if e["data"]["kind"] == "breach"]
    assert [e["data"]["threshold"] for e in got] == ["48h", "60h"]
    assert {e["data"]["controller"] for e in got} == {CONTROLLER}
    assert [int(e["id"]) for e in got] == [e["data"]["seq"] for e in got]
    assert all(e["event"] == "alert" for e in got)
    # resume after the first one
    again = sse_events(api.client.get(
        "/v1/alerts/stream", params={"idle_timeout": 0.3},
        headers={**api.auth("auditor_a"), "Last-Event-ID": got[0]["id"]}).text)
    assert got[1]["data"]["id"] in [e["data"]["id"] for e in again]
    assert got[0]["data"]["id"] not in [e["data"]["id"] for e in again]
    # default start: after the newest, so nothing old is replayed
    assert sse_events(api.get("/v1/alerts/stream", params={"idle_timeout": 0.3}).text) == []
    limited = sse_events(api.get("/v1/alerts/stream", who="admin",
                                 params={"after": 0, "limit": 3}).text)
    assert len(limited) == 3
    assert api.client.get("/v1/alerts/stream").status_code == 401
    assert api.get("/v1/alerts/stream", who="producer_a").status_code == 403


def test_email_and_chat_receivers_never_show_their_secrets(api: Api):
    url = f"/v1/controllers/{CONTROLLER}/webhooks"
    admin = api.auth("admin")
    slack_url = "https://hooks.slack.com/services/T0/B0/sl4ck-t0ken"
    teams_url = "https://prod.westeurope.logic.azure.com/workflows/x/paths/invoke?sig=t34ms"
    bodies = [
        {"kind": "email", "host": "smtp.example.no",
         "login": {"username": "dpo", "password": "pw-9f3k"},
         "from": "alerts@example.no", "to": ["dpo@example.no"],
         "base_url": "https://ledger.example.no"},
        {"kind": "slack", "url": slack_url},
        {"kind": "teams", "url": teams_url, "base_url": "https://ledger.example.no/"},
    ]
    made = []
    for body in bodies:
        r = api.client.post(url, json=body, headers=admin)
        assert r.status_code == 201, r.text
        assert "secret" not in r.json() and "password" not in r.json()
        made.append(r.json())
    email, slack, teams = made
    assert (email["port"], email["security"], email["from"], email["to"], email["username"]
            ) == (587, "starttls", "alerts@example.no", ["dpo@example.no"], "dpo")
    assert (slack["host"], teams["host"]) == ("hooks.slack.com",
                                              "prod.westeurope.logic.azure.com")
    assert teams["base_url"] == "https://ledger.example.no"
    r = api.get(url, who="admin")
    assert [i["kind"] for i in r.json()["items"]] == ["email", "slack", "teams"]
    for secret in ("pw-9f3k", "sl4ck-t0ken", "t34ms", "/services/"):
        assert secret not in r.text
    assert [i["id"] for i in api.get(url, who="admin", params={"kind": "slack"}
                                     ).json()["items"]] == [slack["id"]]
    # the signing path still works beside them, and the others' secrets are stored
    st = api.client.app.state.alerts.outbox
    assert st.webhook(slack["id"])["secret"] == slack_url
    assert st.webhook(email["id"])["secret"] == "pw-9f3k"
    # admin only; another controller's receivers do not exist for this path
    assert api.client.post(url, json=bodies[1], headers=api.auth("auditor_a")
                           ).status_code == 403
    assert api.get(url, who="auditor_a").status_code == 403
    assert api.get("/v1/controllers/XX-0/webhooks", who="admin").status_code == 404
    other = f"/v1/controllers/{OTHER}/webhooks"
    assert api.get(other, who="auditor_a").status_code == 404
    assert api.client.delete(f"{other}/{slack['id']}", headers=admin).status_code == 404
    assert api.get(other, who="admin").json()["items"] == []
    for bad in ({"kind": "email", "host": "h", "from": "not-an-address", "to": ["a@b.no"]},
                {"kind": "email", "host": "h", "from": "a@b.no", "to": []},
                {"kind": "email", "host": "h", "from": "a@b.no", "to": ["x@y\r\nBcc: z@q"]},
                {"kind": "email", "host": "h", "from": "a@b.no", "to": ["a@b.no"],
                 "login": {"username": "u"}},
                {"kind": "email", "host": "h", "from": "a@b.no", "to": ["a@b.no"],
                 "login": {"username": "u", "password": "p\u00e4ss"}},
                {"kind": "email", "host": "h", "from": "a@b.no", "to": ["a@b.no"],
                 "port": 0},
                {"kind": "slack", "url": "ftp://x"}, {"kind": "teams"},
                {"kind": "pager", "url": "https://x"}, {"kind": 7, "url": "https://x"}):
        r = api.client.post(url, json=bad, headers=admin)
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", (bad, r.text)
    assert api.client.delete(f"{url}/{email['id']}", headers=admin).status_code == 204
    assert [i["kind"] for i in api.get(url, who="admin").json()["items"]] == ["slack",
                                                                              "teams"]
