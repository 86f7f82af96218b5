"""POST /v1/events: single and batch, per-event results, limits, producer scoping."""

from __future__ import annotations

import re

import orjson

from ledger.codes import MAX_BATCH
from tests.api.conftest import Api
from tests.conftest import OTHER


def test_single_event_accepted_then_duplicate(api: Api) -> None:
    ev = api.event()
    r = api.post(ev)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "accepted" and body["event_id"] == ev["event_id"]
    assert isinstance(body["index"], int) and body["leaf_hash"]
    again = api.post(ev)
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert again.json()["index"] == body["index"]


def test_single_rejection_and_conflict(api: Api) -> None:
    ev = api.event()
    ev["sig"] = ev["sig"][:-2] + ("AA" if ev["sig"][-2:] != "AA" else "BA")
    r = api.post(ev)
    assert r.status_code == 422
    assert r.json()["code"] == "bad_signature" and r.json()["status"] == "rejected"
    good = api.event()
    assert api.post(good).status_code == 201
    other = api.event(event_id=good["event_id"], data={
        "purposes": ["other"], "method": "web_form", "notice_version": "v2"})
    r = api.post(other)
    assert r.status_code == 409 and r.json()["code"] == "event_id_conflict"


def test_batch_keeps_good_events(api: Api) -> None:
    good1, good2 = api.event(), api.event()
    bad = api.event()
    bad["data"]["unknown_field"] = 1
    r = api.post([good1, bad, 42, good2])
    assert r.status_code == 200
    res = r.json()
    assert [x["status"] for x in res] == ["accepted", "rejected", "rejected", "accepted"]
    assert res[1]["code"] == "schema_violation" and res[1]["event_id"] == bad["event_id"]
    assert res[2]["code"] == "schema_violation" and res[2]["event_id"] is None
    assert res[3]["index"] == res[0]["index"] + 1


def test_producer_key_only_writes_for_its_controller(api: Api) -> None:
    mine, theirs = api.event(), api.event(OTHER)
    ghost = api.event(controller="SE-5560000000")
    res = api.post([mine, theirs, ghost]).json()
    assert res[0]["status"] == "accepted"
    # Another tenant's controller answers exactly as one that does not exist.
    assert res[1]["code"] == res[2]["code"] == "unknown_controller"
    assert res[1]["detail"].replace(OTHER, "X") == res[2]["detail"].replace(
        "SE-5560000000", "X")
    # The event really was not stored.
    assert api.world.ledger.log.lookup(OTHER, [theirs["event_id"]]) == {}
    # The admin key may write for any controller.
    assert api.post([api.event(OTHER)], who="admin").json()[0]["status"] == "accepted"


def test_auditor_may_not_post(api: Api) -> None:
    r = api.post([api.event()], who="auditor_a")
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_malformed_json(api: Api) -> None:
    r = api.client.post("/v1/events", content=b'{"spec": ', headers=api.auth("producer_a"))
    assert r.status_code == 400
    assert r.json()["code"] == "malformed_json" and r.json()["detail"]
    r = api.client.post("/v1/events", content=b'"just a string"',
                        headers=api.auth("producer_a"))
    assert r.status_code == 422 and r.json()["code"] == "schema_violation"


def test_body_too_large(api: Api) -> None:
    api.client.app.state.max_body_bytes = 1000  # type: ignore[attr-defined]
    r = api.client.post("/v1/events", content=b"[" + b" " * 2000 + b"]",
                        headers=api.auth("producer_a"))
    assert r.status_code == 413 and r.json()["code"] == "too_large"


def test_body_too_large_streamed_without_length(api: Api) -> None:
    api.client.app.state.max_body_bytes = 1000  # type: ignore[attr-defined]

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(10):
            yield b" " * 200

    r = api.client.post("/v1/events", content=chunks(), headers=api.auth("producer_a"))
    assert r.status_code == 413 and r.json()["code"] == "too_large"


def test_too_many_events(api: Api) -> None:
    body = orjson.dumps([{}] * (MAX_BATCH + 1))
    r = api.client.post("/v1/events", content=body, headers=api.auth("producer_a"))
    assert r.status_code == 422 and r.json()["code"] == "batch_too_large"


def test_max_batch_accepted(api: Api) -> None:
    batch = [api.event() for _ in range(MAX_BATCH)]
    res = api.post(batch).json()
    assert len(res) == MAX_BATCH and {x["status"] for x in res} == {"accepted"}


def test_auth_errors_have_code_and_detail(api: Api) -> None:
    r = api.client.post("/v1/events", json=[])
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    assert r.headers["www-authenticate"] == "Bearer"
    r = api.client.post("/v1/events", json=[], headers={"Authorization": "Bearer alk_nope"})
    assert r.status_code == 401 and set(r.json()) == {"code", "detail"}
    r = api.client.get("/v1/nothing-here", headers=api.auth("admin"))
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = api.client.delete("/v1/events", headers=api.auth("admin"))
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"


def test_empty_batch(api: Api) -> None:
    r = api.post([])
    assert r.status_code == 200 and r.json() == []


def test_metrics_count_ingest(api: Api) -> None:
    bad = api.event()
    bad["sig"] = "A" * 86
    api.post([api.event(), bad])
    text = api.client.get("/metrics").text
    assert 'auditledger_events_total{status="accepted"} 1' in text
    assert 'auditledger_rejections_total{code="bad_signature"} 1' in text
    assert "auditledger_alert_queue_length 0" in text
    assert re.search(r"^auditledger_projection_lag \d+\.0$", text, re.M)
    assert re.search(r"^auditledger_ingest_rate [0-9.]+$", text, re.M)


def test_health(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    r = api.client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ready"
    assert r.json()["log"]["ok"] is True



def test_group_commit_gives_each_request_its_results(api: Api) -> None:
    """Concurrent requests coalesced into one submit still get exactly their own results,
    in order, with sequential semantics (a repeat across requests is a duplicate)."""
    import threading

    from api.routes.ingest import GroupCommit

    group = GroupCommit(api.world.ledger, threading.Lock(), max_events=120)
    batches = [[api.event() for _ in range(25)] for _ in range(8)]
    batches[7][0] = batches[0][0]  # the same event in two requests
    out: dict[int, list] = {}
    start = threading.Barrier(8)

    def post(n: int) -> None:
        start.wait()
        out[n] = group.submit(batches[n])

    threads = [threading.Thread(target=post, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, batch in enumerate(batches):
        assert [r.event_id for r in out[n]] == [e["event_id"] for e in batch]
    statuses = [out[0][0].status, out[7][0].status]
    assert sorted(statuses) == ["accepted", "duplicate"]
    indexes = [r.index for n in out for r in out[n]]
    assert len(set(indexes)) == 8 * 25 - 1


def post_raw(api: Api, body: bytes, who: str = "producer_a"):  # type: ignore[no-untyped-def]
    return api.client.post("/v1/events", content=body, headers={
        **api.auth(who), "content-type": "application/json"})


def test_duplicate_member_name_rejects_only_that_event(api: Api) -> None:
    good, bad = api.event(), api.event()
    raw_bad = orjson.dumps(bad).replace(b'"method":"web_form"',
                                        b'"method":"web_form","method":"phone"')
    r = post_raw(api, b"[" + orjson.dumps(good) + b"," + raw_bad + b"]")
    assert r.status_code == 200, r.text
    res = r.json()
    assert res[0]["status"] == "accepted"
    assert (res[1]["status"], res[1]["code"]) == ("rejected", "malformed_json")
    assert res[1]["event_id"] == bad["event_id"] and '"method"' in res[1]["detail"]
    single = post_raw(api, raw_bad)
    assert single.status_code == 422 and single.json()["code"] == "malformed_json"


def test_nesting_beyond_the_parsers_limit_rejects_only_that_event(api: Api) -> None:
    good = api.event()
    deep = orjson.dumps(api.event(data={"purposes": ["x"], "method": "m",
                                        "notice_version": "v", "ext": {"d": 0}}))
    deep = deep.replace(b'"d":0', b'"d":' + b"[" * 1100 + b"]" * 1100)
    r = post_raw(api, b"[" + deep + b"," + orjson.dumps(good) + b"]")
    assert r.status_code == 200, r.text
    assert [(x["status"], x.get("code")) for x in r.json()] == [
        ("rejected", "schema_violation"), ("accepted", None)]
    single = post_raw(api, deep)
    assert single.status_code == 422 and single.json()["code"] == "schema_violation"


def test_a_leap_second_costs_another_tenant_nothing(api: Api) -> None:
    """The red team's case: an invalid time used to answer 500 for the whole merged
    batch, losing the other tenant's events."""
    leap = api.event(occurred_at="2026-06-30T23:59:60Z")
    theirs = api.event(OTHER)
    mine = api.post([leap, api.event()]).json()
    assert [(x["status"], x.get("code")) for x in mine] == [
        ("rejected", "schema_violation"), ("accepted", None)]
    assert api.post([theirs], who="producer_b").json()[0]["status"] == "accepted"


def test_event_ids_are_per_controller_over_http(api: Api) -> None:
    mine = api.event()
    assert api.post(mine).status_code == 201
    theirs = api.event(OTHER, event_id=mine["event_id"])
    r = api.post(theirs, who="producer_b")
    assert r.status_code == 201, r.text  # not 409: another tenant's id is not ours
    assert r.json()["controller"] == OTHER
