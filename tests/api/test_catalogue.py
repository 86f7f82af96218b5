"""The event catalogue over HTTP (``GET /v1/schemas``, ``GET /v1/schemas/{type}``) and
on the command line (``auditledger schema list|show``), and the richer rejection details:
every schema error at once, the nearest known types for an unknown one."""

from __future__ import annotations

import subprocess

import orjson

from ledger.schemas import default_schemas
from tests.api.conftest import Api
from tests.conftest import CLI


def test_catalogue_lists_every_type_with_required_fields(api: Api) -> None:
    r = api.client.get("/v1/schemas")  # no key: the catalogue holds no tenant data
    assert r.status_code == 200
    doc = r.json()
    assert doc["spec"] == "auditledger/1" and doc["envelope_url"] == "/v1/schemas/envelope"
    by_type = {t["type"]: t for t in doc["types"]}
    assert set(by_type) == set(default_schemas().types) and len(by_type) >= 30
    assert [t["type"] for t in doc["types"]] == sorted(by_type)
    assert by_type["consent.given"]["required"] == ["purposes", "method", "notice_version"]
    assert by_type["breach.aware"]["required"] == ["breach_id", "aware_at"]
    assert "72-hour" in by_type["breach.aware"]["description"]
    assert "Art. 7" in by_type["consent.given"]["source"]
    assert by_type["consent.given"]["schema_url"] == "/v1/schemas/consent.given"


def test_one_schema_and_the_envelope(api: Api) -> None:
    r = api.client.get("/v1/schemas/consent.given")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == default_schemas().schema_for("consent.given")
    env = api.client.get("/v1/schemas/envelope").json()
    assert "sig" in env["required"] and "event_id" in env["properties"]


def test_unknown_schema_is_404_with_suggestions(api: Api) -> None:
    r = api.client.get("/v1/schemas/consent.givn")
    assert r.status_code == 404
    assert r.json() == {"code": "not_found", "detail":
                        "schema: 'consent.givn' is not a known event type; did you mean "
                        "'consent.given' or 'consent.withdrawn'?"}


def test_rejection_lists_a_missing_and_an_unknown_field_together(api: Api) -> None:
    env = api.event(data={"purposes": ["newsletter"], "method": "web_form",
                          "colour": "red"})  # notice_version missing, colour unknown
    (res,) = api.post([env]).json()
    assert res["status"] == "rejected" and res["code"] == "schema_violation"
    assert res["detail"] == (
        'data: "notice_version" is a required property; data.colour: unknown field (not '
        "allowed by the schema; producers' own fields go in data.ext)")


def test_envelope_and_data_errors_come_together(api: Api) -> None:
    env = api.event(data={"purposes": ["newsletter"], "method": "web_form"})
    env["colour"] = "red"
    (res,) = api.post([env]).json()
    assert res["code"] == "schema_violation"
    parts = res["detail"].split("; ")
    assert "colour: unknown field (not allowed by the schema)" in parts
    assert 'data: "notice_version" is a required property' in parts


def test_unknown_type_suggests_the_nearest(api: Api) -> None:
    (res,) = api.post([api.event(type_="rights_request.recieved")]).json()
    assert res["code"] == "unknown_type"
    assert res["detail"].startswith(
        "type: 'rights_request.recieved' is not a known event type; did you mean "
        "'rights_request.received'")
    (res,) = api.post([api.event(type_="qqqq.zzzz")]).json()
    assert res["code"] == "unknown_type"
    assert res["detail"].endswith("see GET /v1/schemas or auditledger schema list")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def test_cli_schema_list_and_show() -> None:
    listed = orjson.loads(_cli("schema", "list", "--json").stdout)
    assert listed == default_schemas().catalogue()
    human = _cli("schema", "list").stdout
    assert "consent.given\n" in human
    assert "required in data: purposes, method, notice_version" in human
    shown = _cli("schema", "show", "breach.aware")
    assert shown.returncode == 0
    assert orjson.loads(shown.stdout) == default_schemas().schema_for("breach.aware")
    assert shown.stdout.startswith("{\n  "), "indented for a person"
    assert orjson.loads(_cli("schema", "show", "envelope").stdout)["title"]
    bad = _cli("schema", "show", "breach.awere")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "error: type: 'breach.awere' is not a known event type; did you mean "
        "'breach.aware', 'breach.assessed' or 'breach.detected'?"]
