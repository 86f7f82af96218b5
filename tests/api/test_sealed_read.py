"""What readers are told of sealed personal data: plaintext for an admin, ``sealed`` for
an auditor, ``erased`` for everyone once the subject's keys are destroyed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ledger.clock import format_rfc3339
from ledger.envelope import new_event_id, pseudonym
from ledger.keystore import apply_erasure
from ledger.sealing import seal
from tests.api.conftest import Api
from tests.conftest import CONTROLLER, SUBJECT_KEY

BASE = f"/v1/controllers/{CONTROLLER}"
CONTACT = {"name": "Kari Nordmann", "email": "kari.nordmann@example.no"}


def sealed_event(api: Api, type_: str, data: dict[str, Any], identifier: str,
                 fields: dict[str, Any]) -> dict[str, Any]:
    """An event of ``identifier``'s subject keeping ``fields`` sealed under its data key."""
    eid = new_event_id()
    subject = pseudonym(SUBJECT_KEY, identifier)
    kid, key = api.world.ledger.keys.data_key(CONTROLLER, subject)
    return api.event(type_=type_, data=data, subject=identifier, event_id=eid,
                     sealed=seal(fields, kid, key, CONTROLLER, eid))


def erase(api: Api, identifier: str, request_id: str) -> str:
    now = api.world.clock.now()
    env = api.event(type_="subject.erased", subject=identifier, data={
        "request_id": request_id, "keys_destroyed_at": format_rfc3339(now)})
    assert api.post([env]).json()[0]["status"] == "accepted"
    api.world.ledger.flush()
    ev = api.world.ledger.log.lookup(CONTROLLER, [env["event_id"]])[env["event_id"]]
    apply_erasure(api.world.ledger.keys, ev)  # what ingest does; applying again is a no-op
    return env["event_id"]


def test_sealed_event_and_case_by_role_then_erased(api: Api) -> None:
    now = api.world.clock.now()
    received = sealed_event(api, "rights_request.received", {
        "request_id": "r-sealed", "right": "erasure",
        "received_at": format_rfc3339(now - timedelta(days=2))}, CONTACT["email"], CONTACT)
    plain = api.event(type_="rights_request.received", data={
        "request_id": "r-plain", "right": "access",
        "received_at": format_rfc3339(now - timedelta(days=1))})
    assert {r["status"] for r in api.post([received, plain]).json()} == {"accepted"}
    eid = received["event_id"]

    admin = api.get(f"{BASE}/events/{eid}/sealed", who="admin").json()
    assert admin["state"] == "sealed" and admin["fields"] == CONTACT
    assert admin["kid"] == received["sealed"]["kid"]
    auditor = api.get(f"{BASE}/events/{eid}/sealed").json()
    assert auditor["state"] == "sealed" and "fields" not in auditor
    assert CONTACT["email"] not in str(auditor)
    none = api.get(f"{BASE}/events/{plain['event_id']}/sealed").json()
    assert none["state"] == "absent"
    assert api.get(f"{BASE}/events/{new_event_id()}/sealed").status_code == 404
    # Another tenant's auditor does not learn that the event exists.
    assert api.get(f"{BASE}/events/{eid}/sealed", who="auditor_b").status_code == 404

    rows = {r["request_id"]: r for r in api.get(f"{BASE}/rights-requests").json()["items"]}
    assert rows["r-sealed"]["personal_data"] == {"state": "sealed", "events": [eid],
                                                 "erased_at": None}
    assert rows["r-plain"]["personal_data"]["state"] == "absent"
    assert CONTACT["email"] not in api.get(f"{BASE}/rights-requests", who="admin").text

    erased_by = erase(api, CONTACT["email"], "r-sealed")
    for who in ("admin", "auditor_a"):
        after = api.get(f"{BASE}/events/{eid}/sealed", who=who).json()
        assert after["state"] == "erased" and "fields" not in after, who
        assert after["erased_at"].startswith(format_rfc3339(now)[:16])
    row = next(r for r in api.get(f"{BASE}/rights-requests", who="admin").json()["items"]
               if r["request_id"] == "r-sealed")
    assert row["personal_data"]["state"] == "erased" and row["personal_data"]["erased_at"]
    # The event, its hash and signature are untouched: the ciphertext is still served.
    listed = api.get(f"{BASE}/events", params={"type": "rights_request.*"}).json()["items"]
    assert any(e["event_id"] == eid and e["sealed"] == received["sealed"] for e in listed)
    assert erased_by in api.get(f"{BASE}/consents/{received['subject']}").json()[
        "erased"]["event_id"]


def test_breach_contact_is_sealed_on_the_breach_row(api: Api) -> None:
    now = api.world.clock.now()
    aware = api.event(type_="breach.aware", subject=None, data={
        "breach_id": "b-sealed", "aware_at": format_rfc3339(now - timedelta(hours=30))})
    notified = sealed_event(api, "breach.notified_authority", {
        "breach_id": "b-sealed", "authority": "Datatilsynet", "phase": "initial",
        "notified_at": format_rfc3339(now - timedelta(hours=2))}, "dpo@example.no",
        {"contact_name": "Ola Hansen", "contact_phone": "+47 912 34 567"})
    assert {r["status"] for r in api.post([aware, notified]).json()} == {"accepted"}
    (row,) = [b for b in api.get(f"{BASE}/breaches").json()["items"]
              if b["breach_id"] == "b-sealed"]
    assert row["personal_data"]["state"] == "sealed"
    assert row["personal_data"]["events"] == [notified["event_id"]]
    assert "Ola Hansen" not in api.get(f"{BASE}/breaches", who="admin").text
