"""Read-model routes over the projections, with DESIGN.md's field names."""

from __future__ import annotations

from datetime import timedelta

from ledger.clock import format_rfc3339
from tests.api.conftest import Api
from tests.conftest import CONTROLLER

BASE = f"/v1/controllers/{CONTROLLER}"


def test_rights_requests_deadlines_and_breaches(api: Api) -> None:
    now = api.world.clock.now()
    events = [
        api.event(type_="rights_request.received", data={
            "request_id": f"r{i}", "right": "access",
            "received_at": format_rfc3339(now - timedelta(days=i))})
        for i in range(3)
    ]
    events.append(api.event(type_="breach.aware", subject=None, data={
        "breach_id": "b1", "aware_at": format_rfc3339(now - timedelta(hours=10))}))
    assert {r["status"] for r in api.post(events).json()} == {"accepted"}

    page = api.get(f"{BASE}/rights-requests", params={"limit": 2}).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = api.get(f"{BASE}/rights-requests", params={"cursor": page["next_cursor"]}).json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    rr = page["items"][0]
    assert {"request_id", "subject", "right", "status", "received_at", "due",
            "extended_due", "promised_due", "binding_due"} <= set(rr)

    breaches = api.get(f"{BASE}/breaches").json()["items"]
    assert breaches[0]["breach_id"] == "b1"
    assert {"breach_id", "status", "aware_at", "authority_due", "risk", "notified_at",
            "obligations"} <= set(breaches[0])

    deadlines = api.get(f"{BASE}/deadlines").json()["items"]
    assert deadlines, "everything due"
    due = [d["due_at"] for d in deadlines]
    assert due == sorted(due)
    assert deadlines[0]["kind"] == "breach"  # 72 hours beats a month


def test_other_read_models_answer(api: Api) -> None:
    subject = api.world.ledger.log.lookup(CONTROLLER, [api.ids[CONTROLLER][0]])[
        api.ids[CONTROLLER][0]].envelope()["subject"]
    consents = api.get(f"{BASE}/consents/{subject}").json()
    assert consents["subject"] == subject
    assert consents["purposes"][0]["state"] == "given"
    assert "activities" in api.get(f"{BASE}/ropa").json()
    for name in ("recipients", "transfers", "findings"):
        r = api.get(f"{BASE}/{name}")
        assert r.status_code == 200 and "items" in r.json(), name
    findings = api.get(f"{BASE}/findings").json()["items"]
    for f in findings:
        assert {"code", "controller", "severity", "detail", "evidence"} <= set(f)


def test_readyz_reports_projection_lag(api: Api) -> None:
    api.get(f"{BASE}/findings")  # reads catch the projections up
    doc = api.client.get("/readyz").json()
    assert doc["projections"]["ok"] is True and doc["projections"]["lag"] == 0
