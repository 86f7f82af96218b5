"""The subject routes: look-up (header and body), by pseudonym, erase, data-key; who may
call them; another tenant's subject is the same 404 as a missing one; evidence bundles
made before and after an erasure verify."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from typer.testing import CliRunner

from ledger.cli import app as cli
from ledger.encoding import unb64url
from ledger.keystore import Destroyed
from ledger.sealing import open_sealed, seal
from tests.api.conftest import Api
from tests.conftest import CONTROLLER, OTHER
from tests.erasure.conftest import partial, psn, rights, sealed_event, sign

GHOST = "SE-5566778899"
BASE = f"/v1/controllers/{CONTROLLER}/subjects"


def call(api: Api, method: str, path: str, who: str = "admin", **kw: Any) -> Any:
    return api.client.request(method, path, headers={**api.auth(who), **kw.pop("headers", {})},
                              **kw)


def test_lookup_by_header_and_by_body_and_by_pseudonym(api: Api) -> None:
    ledger = api.world.ledger
    alice = psn(ledger, "alice@example.org")
    ledger.submit([sealed_event(api.world, alice)])
    by_header = call(api, "GET", f"{BASE}/lookup",
                     headers={"X-Subject-Identifier": " Alice@Example.ORG"})
    assert by_header.status_code == 200, by_header.text
    doc = by_header.json()
    assert doc["subject"] == alice and doc["known"] is True
    assert [r["type"] for r in doc["records"]] == ["consent.given"]
    assert set(doc["records"][0]) == {"event_id", "type", "occurred_at", "index"}
    assert len(doc["keys"]["live"]) == 1 and doc["keys"]["erased_at"] is None
    assert by_header.headers["cache-control"] == "no-store"
    by_body = call(api, "POST", f"{BASE}/lookup", json={"identifier": "alice@example.org"})
    assert by_body.json() == doc
    by_psn = call(api, "GET", f"{BASE}/{alice}")
    assert by_psn.json() == doc
    # nobody's records: an answer, not an error
    none = call(api, "POST", f"{BASE}/lookup", json={"identifier": "nobody@example.org"})
    assert none.status_code == 200 and none.json()["known"] is False
    assert none.json()["records"] == []


def test_phone_numbers_are_read_in_the_controllers_country(api: Api) -> None:
    a = call(api, "POST", f"{BASE}/lookup", json={"identifier": "912 34 567"}).json()
    b = call(api, "POST", f"{BASE}/lookup", json={"identifier": "+47 91234567"}).json()
    assert a["subject"] == b["subject"]


def test_erase_route(api: Api) -> None:
    world, ledger = api.world, api.world.ledger
    alice = psn(ledger, "alice@example.org")
    ledger.submit([sealed_event(world, alice), rights(world, alice, "req-7")])
    (kid,) = ledger.keys.subject_state(CONTROLLER, alice).live
    world.clock.advance(timedelta(seconds=3))
    wrong = call(api, "POST", f"{BASE}/erase", json={"subject": alice, "request_id": "nope"})
    assert wrong.status_code == 409 and wrong.json()["code"] == "request_mismatch"
    r = call(api, "POST", f"{BASE}/erase",
             json={"subject": alice, "request_id": "req-7", "reason": "Art. 17"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "accepted" and doc["key_ids"] == [kid]
    assert doc["request_id"] == "req-7" and doc["keys"]["destroyed"] == [kid]
    assert isinstance(ledger.keys.key(CONTROLLER, kid), Destroyed)
    again = call(api, "POST", f"{BASE}/erase", json={"subject": alice})
    assert again.status_code == 409 and again.json()["code"] == "already_erased"
    unknown = call(api, "POST", f"{BASE}/erase", json={"subject": "psn:" + "Z" * 43})
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_subject"
    state = call(api, "GET", f"{BASE}/{alice}").json()
    assert state["keys"] == {"live": [], "destroyed": [kid], "erased_at": doc["keys_destroyed_at"]}
    assert state["records"][-1]["type"] == "subject.erased"


def test_data_key_route_seals_what_ingest_accepts(api: Api) -> None:
    world, ledger = api.world, api.world.ledger
    alice = psn(ledger, "alice@example.org")
    r = call(api, "POST", f"{BASE}/data-key", who="producer_a", json={"subject": alice})
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    kid, key = r.json()["kid"], unb64url(r.json()["key"], 32)
    assert call(api, "POST", f"{BASE}/data-key", json={"subject": alice}).json()["kid"] == kid
    env = partial(world, alice)
    env["sealed"] = seal({"email": "alice@example.org"}, kid, key, CONTROLLER,
                         env["event_id"])
    res = api.post(sign(world, env))
    assert res.status_code == 201, res.text
    stored = ledger.log.lookup(CONTROLLER, [env["event_id"]])[env["event_id"]].envelope()
    assert open_sealed(stored["sealed"], key, CONTROLLER, env["event_id"]) == {
        "email": "alice@example.org"}


def test_who_may_call_what(api: Api) -> None:
    alice = psn(api.world.ledger, "alice@example.org")
    api.world.ledger.submit([sealed_event(api.world, alice)])
    admin_only = [("GET", f"{BASE}/lookup", {"headers": {"X-Subject-Identifier": "a@b.no"}}),
                  ("POST", f"{BASE}/lookup", {"json": {"identifier": "a@b.no"}}),
                  ("GET", f"{BASE}/{alice}", {}),
                  ("POST", f"{BASE}/erase", {"json": {"subject": alice}})]
    for method, path, kw in admin_only:
        for who in ("auditor_a", "producer_a"):
            r = call(api, method, path, who=who, **kw)
            assert r.status_code == 403 and r.json()["code"] == "forbidden", (path, who)
    key_route = ("POST", f"{BASE}/data-key", {"json": {"subject": alice}})
    r = call(api, key_route[0], key_route[1], who="auditor_a", **key_route[2])
    assert r.status_code == 403
    assert api.world.ledger.keys.subject_state(CONTROLLER, alice).live  # nothing erased
    # no key at all
    r = api.client.post(f"{BASE}/erase", json={"subject": alice})
    assert r.status_code == 401


def test_other_tenants_are_the_404_of_a_missing_one(api: Api) -> None:
    """A key that may not see OTHER (auditor, producer) gets, on every subject route of
    OTHER, exactly what it gets for a controller that does not exist."""
    bob = psn(api.world.ledger, "bob@example.org", controller=OTHER)
    routes = [("GET", "lookup", {"headers": {"X-Subject-Identifier": "bob@example.org"}}),
              ("POST", "lookup", {"json": {"identifier": "bob@example.org"}}),
              ("GET", bob, {}), ("POST", "erase", {"json": {"subject": bob}}),
              ("POST", "data-key", {"json": {"subject": bob}})]
    for method, tail, kw in routes:
        for who in ("auditor_a", "producer_a"):
            theirs = call(api, method, f"/v1/controllers/{OTHER}/subjects/{tail}", who=who,
                          **kw)
            ghost = call(api, method, f"/v1/controllers/{GHOST}/subjects/{tail}", who=who,
                         **kw)
            assert theirs.status_code == ghost.status_code == 404, (tail, who, theirs.text)
            assert theirs.json()["detail"].replace(OTHER, "C") == \
                ghost.json()["detail"].replace(GHOST, "C")
    assert api.world.ledger.keys.subject_state(OTHER, bob).live == []  # no key made


def test_another_controllers_subject_is_the_404_of_a_missing_one(api: Api) -> None:
    world = api.world
    ledger = world.ledger
    bob = psn(ledger, "bob@example.org", controller=OTHER)
    env = partial(world, bob, controller=OTHER)
    from ledger.sealing import seal_envelope

    seal_envelope(env, {"email": "bob@example.org"}, ledger.keys)
    assert ledger.submit([sign(world, env, producer="hr", key=api.other_key)])[0].status == \
        "accepted"
    theirs = call(api, "GET", f"{BASE}/{bob}")
    missing = call(api, "GET", f"{BASE}/psn:{'M' * 43}")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["code"] == missing.json()["code"] == "not_found"
    assert theirs.json()["detail"].replace(bob, "S") == missing.json()["detail"].replace(
        f"psn:{'M' * 43}", "S")
    erase = call(api, "POST", f"{BASE}/erase", json={"subject": bob})
    assert erase.status_code == 404 and erase.json()["code"] == "unknown_subject"
    assert ledger.keys.subject_state(OTHER, bob).live  # OTHER's subject untouched


def test_evidence_bundles_before_and_after_an_erasure_verify(api: Api, tmp_path: Path
                                                             ) -> None:
    world, ledger = api.world, api.world.ledger
    alice = psn(ledger, "alice@example.org")
    ledger.submit([sealed_event(world, alice), sealed_event(world, alice)])
    ledger.flush()
    before = fetch(api, tmp_path / "before.zip")
    world.clock.advance(timedelta(seconds=2))
    assert call(api, "POST", f"{BASE}/erase", json={"subject": alice}).status_code == 200
    ledger.flush()
    after = fetch(api, tmp_path / "after.zip")
    runner = CliRunner()
    for bundle in (before, after, world.data_dir):
        result = runner.invoke(cli, ["verify", str(bundle), "--log-key", ledger.verifier_key,
                                     "--json"])
        assert result.exit_code == 0, result.output
        doc = orjson.loads(result.output.strip().splitlines()[-1])
        assert doc["ok"] and doc["problems"] == []
    assert b"alice@example.org" not in after.read_bytes()


def fetch(api: Api, path: Path) -> Path:
    r = api.get(f"/v1/controllers/{CONTROLLER}/evidence", who="admin")
    assert r.status_code == 200, r.text
    path.write_bytes(r.content)
    return path
