"""Every read route's query parameters at their edges answer 4xx with a stable code, never
500; the OpenAPI document states the rules; a read side behind the log answers 503 with
``Retry-After``; ``ReadSide.status()`` says how the projections are doing (issue #14)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import api.readside as readside_module
from api.readside import ReadSide
from api.routes import read
from projections import unprocessable
from projections.store import SQLiteStore
from tests.api.conftest import Api, make_api
from tests.conftest import CONTROLLER

C = f"/v1/controllers/{CONTROLLER}"
EDGES = [
    "0001-01-01T00:00:00+23:59",  # its UTC instant is before year 1
    "9999-12-31T23:59:59-23:59",  # ... after year 9999
    "0001-01-01T00:00:00Z",  # outside the ledger's years
    "1899-12-31T23:59:59Z",
    "9900-01-01",
    "2026-01-01T10:00:00+19:00",  # an offset beyond ±18:00
    "2026-01-01t10:00:00z",  # RFC 3339 allows lower case; the ledger writes and takes upper
    "9999-06-01",
    "0000-01-01",
    "2026-06-30T23:59:60Z",  # a leap second
    "2026-02-30",
    "2026-01-01T10:00:00",  # no offset
    "2026-01-01T10:00:00+24:00",
    # these match the documented pattern; the calendar check after it refuses them
    "1900-01-01T00:00:00+01:00",  # 1899 in UTC
    "9899-12-31T23:59:59-01:00",  # 9900 in UTC
    "2026-02-29",
]


@pytest.mark.parametrize("value", EDGES)
@pytest.mark.parametrize(("path", "name"), [
    (f"{C}/events", "from"), (f"{C}/events", "to"), (f"{C}/evidence", "from"),
    (f"{C}/evidence", "to"), (f"{C}/consents/psn:x", "as_of"),
])
def test_time_parameters_at_the_calendars_edges_are_422(api: Api, path: str, name: str,
                                                        value: str) -> None:
    r = api.get(path, params={name: value})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_request" and name in r.json()["detail"]


def test_time_parameters_inside_the_range_answer(api: Api) -> None:
    assert api.get(f"{C}/events", params={"from": "1900-01-01T00:00:00Z",
                                          "to": "9899-12-31"}).status_code == 200
    r = api.get(f"{C}/consents/psn:x", params={"as_of": "2026-01-01T10:00:00+02:00"})
    assert r.status_code == 200 and r.json()["as_of"] == "2026-01-01T08:00:00.000Z"


@pytest.mark.parametrize("path", ["recipients", "transfers", "rights-requests", "breaches",
                                  "findings", "deadlines", "events"])
def test_cursor_and_limit_of_every_list(api: Api, path: str) -> None:
    url = f"{C}/{path}"
    for bad in ("garbage!", "aXg", "x" * 101):  # "aXg": "ix", not an index
        r = api.get(url, params={"cursor": bad})
        assert r.status_code in (400, 422) and r.json()["code"] in (
            "invalid_cursor", "invalid_request"), (bad, r.text)
    for limit in (0, 1001, 2**63, "x"):
        r = api.get(url, params={"limit": limit})
        assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    # a cursor this API issued, far past the end, is an empty page
    assert api.get(url, params={"cursor": read.encode_cursor(10**18)}).status_code in (200, 400)


def test_type_patterns(api: Api) -> None:
    r = api.get(f"{C}/events", params={"type": ["nope.*"]})
    assert r.status_code == 422 and r.json()["code"] == "invalid_request"
    r = api.get(f"{C}/events", params={"type": ["[", "consent.*"]})
    assert r.status_code == 200


@pytest.mark.parametrize("after", [2**63, -1, 10**30])
def test_alerts_after_out_of_range_is_422(api: Api, after: int) -> None:
    for path in ("/v1/alerts", "/v1/alerts/stream"):
        r = api.get(path, params={"after": after})
        assert r.status_code == 422 and r.json()["code"] == "invalid_request", r.text


def test_alerts_after_at_the_top_of_the_range_is_empty(api: Api) -> None:
    r = api.get("/v1/alerts", params={"after": 2**63 - 1})
    assert r.status_code == 200 and r.json()["items"] == []


def test_openapi_states_the_rules(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()

    def param(path: str, name: str) -> dict:
        (p,) = [p for p in doc["paths"][path]["get"]["parameters"] if p["name"] == name]
        return p

    events = "/v1/controllers/{controller}/events"
    for path, name in ((events, "from"), (events, "to"),
                       ("/v1/controllers/{controller}/evidence", "from"),
                       ("/v1/controllers/{controller}/consents/{subject}", "as_of")):
        p = param(path, name)
        assert "1900-9899" in p["description"] and "18:00" in p["description"]
        assert "422" in p["description"]
        assert p["schema"]["anyOf"][0]["pattern"] == read.TIME_PATTERN
    assert "invalid_cursor" in param(events, "cursor")["description"]
    assert "pattern" in param(events, "type")["description"]
    assert param("/v1/alerts", "after")["schema"]["anyOf"][0]["maximum"] == 2**63 - 1
    evidence = doc["paths"]["/v1/controllers/{controller}/evidence"]["get"]["responses"]
    assert "Retry-After" in evidence["503"]["headers"]
    assert "projections_catching_up" in evidence["503"]["description"]


@pytest.mark.parametrize("value", [*EDGES, "1900-01-01T00:00:00Z", "9899-12-31T23:59:59Z",
                                   "2026-05-14T11:12:03.123456789+18:00"])
def test_a_time_parameter_is_a_valid_time_of_the_ledger(value: str) -> None:
    """One definition of a valid time (ledger.clock): the API takes exactly those."""
    import re

    from api.errors import ApiError
    from ledger.clock import time_problem

    text = value + "T00:00:00Z" if len(value) == 10 else value
    try:
        read.parse_time(value, "from")
        taken = True
    except ApiError:
        taken = False
    assert taken == (time_problem(text) is None)
    if taken:  # what the ledger takes, the documented pattern lets through
        assert re.fullmatch(read.TIME_PATTERN.strip("^$"), value)


def test_the_read_side_interprets_every_valid_time() -> None:
    """The read side's years are wider than the ledger's: it must still interpret events
    an older ingest let in (projections.unprocessable)."""
    from ledger.clock import MAX_YEAR, MIN_YEAR

    assert unprocessable.EARLIEST_YEAR < MIN_YEAR and unprocessable.LATEST_YEAR > MAX_YEAR


# -- a read side behind the log --------------------------------------------------------------

@pytest.fixture
def behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Api, ReadSide]]:
    """An API whose read side waits for a worker (``follow``) that has not run yet."""
    monkeypatch.setattr(readside_module, "CATCH_UP_WAIT_SECONDS", 0.2)
    a, store = make_api(tmp_path, read_side=None)
    rs = ReadSide(a.world.ledger, a.world.ledger.clock, follow=True)
    a.client.app.state.read_side = rs
    with a.client:
        yield a, rs
    rs.close()
    store.close()
    a.world.ledger.close()


def test_read_routes_answer_503_with_retry_after_until_caught_up(
        behind: tuple[Api, ReadSide]) -> None:
    a, rs = behind
    assert rs.status()["caught_up"] is False and rs.status()["lag"] > 0
    for path in ("evidence", "breaches", "findings", "deadlines", "rights-requests"):
        r = a.get(f"{C}/{path}")
        assert r.status_code == 503, (path, r.text)
        assert r.json()["code"] == "projections_catching_up"
        assert r.headers["Retry-After"] == str(readside_module.RETRY_AFTER_SECONDS)
    rs.step()  # the worker catches up
    for path in ("evidence", "breaches", "findings", "deadlines", "rights-requests"):
        assert a.get(f"{C}/{path}").status_code == 200, path
    st = rs.status()
    assert st["caught_up"] is True and st["lag"] == 0 and st["last_error"] is None
    assert st["worker"]["alive"] is True and st["worker"]["failing"] is False


def test_status_reports_the_last_error_of_a_run(behind: tuple[Api, ReadSide]) -> None:
    """A real failure: the read-model table the batch writes is gone."""
    a, rs = behind
    path = str(a.world.ledger.cfg.readmodel_db)
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE entities")
    with pytest.raises(Exception, match="entities"):
        rs.step()
    st = rs.status()
    assert st["worker"]["failing"] is True and st["caught_up"] is False
    assert "entities" in st["last_error"]["error"] and st["last_error"]["source"] == "worker"
    assert st["last_error"]["positions"] == {"log/0": 0}
    r = a.get(f"{C}/evidence")
    assert r.status_code == 503 and r.json()["code"] == "projections_catching_up"
    assert "entities" in r.json()["detail"]  # the last error is named
    ready = a.client.get("/readyz")  # a worker whose runs fail is not ready
    assert ready.status_code == 503 and "entities" in ready.json()["projections"]["detail"]
    SQLiteStore(path).close()  # creates the missing table again
    rs.step()
    st = rs.status()
    assert st["caught_up"] is True and st["worker"]["failing"] is False
    assert a.client.get("/readyz").status_code == 200
    assert "entities" in st["last_error"]["error"]  # kept after recovery


# -- events the read side cannot interpret, beneath ingest -----------------------------------

def _beneath_ingest(a: Api, type_: str, data: dict, occurred_at: str) -> str:
    """Append a signed event to the log without ingest's checks (as an old log holds it)."""
    import hashlib

    from ledger.canonical import signed_and_unsigned
    from ledger.log.base import Prepared
    from ledger.signing import DOMAIN

    env = a.event(type_=type_, data=data, subject=None, occurred_at=occurred_at)
    body, unsigned = signed_and_unsigned(env)
    a.world.ledger.log.append([Prepared(
        env["event_id"], CONTROLLER, type_, "crm", occurred_at, body,
        hashlib.sha256(DOMAIN + unsigned).digest())], "2026-12-01T00:00:00.000Z")
    return env["event_id"]


def test_read_routes_answer_over_events_that_cannot_be_interpreted(api: Api) -> None:
    bad = [
        _beneath_ingest(api, "breach.aware", {"breach_id": "b1", "aware_at":
                        "2026-06-30T23:59:60Z"}, "2026-07-01T00:00:00Z"),
        _beneath_ingest(api, "rights_request.received", {
            "request_id": "r1", "right": "access", "received_at": "0000-01-01T00:00:00Z"},
            "0001-01-01T00:00:00+23:59"),
    ]
    api.world.ledger.flush()
    for path in ("breaches", "rights-requests", "deadlines", "findings", "evidence", "events",
                 "ropa", "recipients", "transfers"):
        assert api.get(f"{C}/{path}").status_code == 200, path
    found = api.get(f"{C}/findings", params={"code": "unprocessable_event"}).json()["items"]
    assert sorted(f["evidence"][0] for f in found) == sorted(bad)
    # an event whose occurred_at cannot be interpreted lies in no period
    r = api.get(f"{C}/events", params={"from": "2000-01-01", "limit": 1000})
    assert r.status_code == 200
    assert bad[1] not in {e["event_id"] for e in r.json()["items"]}


def test_a_period_bundle_holds_events_whose_time_cannot_be_read(api: Api) -> None:
    import io
    import zipfile

    leap = _beneath_ingest(api, "breach.detected", {
        "breach_id": "b2", "detected_at": "2026-07-01T00:00:00Z", "description": "x"},
        "2026-06-30T23:59:60Z")
    api.world.ledger.flush()
    # a period whose checkpoints cover the event's arrival (the range is chosen by them)
    r = api.get(f"{C}/evidence", params={"from": "2026-01-01", "to": "2027-01-01"})
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        events = z.read("events.jsonl").decode()
    assert leap in events  # not provably outside the period: never left out
