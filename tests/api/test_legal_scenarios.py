"""End-to-end scenarios of the legal rules (issue #15): events go in through
``POST /v1/events``, verdicts come out of ``/findings``, ``/breaches``,
``/rights-requests``, ``/deadlines`` and ``/transfers`` — as a DPO or a supervisory
authority would try them. The fixture's controller is Norwegian (``NO``, Europe/Oslo);
the ledger clock is ``tests.conftest.NOW`` (Friday 2026-11-20 12:00 UTC)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ledger.clock import format_rfc3339
from tests.api.conftest import Api
from tests.conftest import CONTROLLER, NOW

BASE = f"/v1/controllers/{CONTROLLER}"


def ago(**kw: float) -> str:
    return format_rfc3339(NOW - timedelta(**kw))


def post(api: Api, *events: tuple[str, dict[str, Any], str | None]) -> list[str]:
    """Post ``(type, data, subject)`` events in one batch; their ids, in order."""
    body = [api.event(type_=t, data=d, subject=s) for t, d, s in events]
    res = api.post(body).json()
    assert [r["status"] for r in res] == ["accepted"] * len(body), res
    return [r["event_id"] for r in res]


def findings(api: Api, code: str) -> list[dict[str, Any]]:
    r = api.get(f"{BASE}/findings", params={"code": code})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def by_id(api: Api, route: str, key: str) -> dict[str, dict[str, Any]]:
    r = api.get(f"{BASE}/{route}")
    assert r.status_code == 200, r.text
    return {x[key]: x for x in r.json()["items"]}


# --- breaches: awareness --------------------------------------------------------------------


def test_processor_notice_makes_the_controller_aware(api: Api) -> None:
    ids = post(
        api,
        ("breach.detected", {"breach_id": "b-proc", "detected_at": ago(hours=100),
                             "description": "processor's backup exposed"}, None),
        ("breach.processor_notified", {"breach_id": "b-proc", "recipient_id": "rcp-hosting",
                                       "notified_at": ago(hours=90)}, None),
        ("breach.aware", {"breach_id": "b-proc", "aware_at": ago(hours=20)}, None),
    )
    b = by_id(api, "breaches", "breach_id")["b-proc"]
    # Art. 33(2): aware when the processor told it, not when it wrote breach.aware
    assert b["aware_at"] == ago(hours=90)
    assert b["authority_due"] == ago(hours=18)
    assert b["status"] == "overdue"
    assert b["awareness_gap_seconds"] == 10 * 3600
    late = [f for f in findings(api, "breach_not_notified") if f.get("breach_id") == "b-proc"]
    assert len(late) == 1 and ids[1] in late[0]["evidence"]  # the processor's notice
    assert not findings(api, "breach_awareness_not_recorded")  # 10 h gap: short enough


def test_detection_without_awareness_is_a_finding_and_on_the_board(api: Api) -> None:
    det = post(
        api,
        ("breach.detected", {"breach_id": "b-old", "detected_at": ago(hours=80),
                             "description": "odd outbound traffic"}, None),
        ("breach.detected", {"breach_id": "b-new", "detected_at": ago(hours=10),
                             "description": "phishing report"}, None),
    )
    found = findings(api, "breach_awareness_not_recorded")
    assert [f["breach_id"] for f in found] == ["b-old"]
    assert found[0]["evidence"] == [det[0]]
    assert found[0]["severity"] == "medium"
    assert "no awareness recorded" in found[0]["detail"] and "80.0 h" in found[0]["detail"]
    reg = by_id(api, "breaches", "breach_id")
    assert reg["b-old"]["unaware_for_seconds"] == 80 * 3600  # the gap is shown
    assert reg["b-old"]["aware_at"] is None and reg["b-old"]["status"] == "open"
    board = {(d["id"], d["deadline"]): d
             for d in api.get(f"{BASE}/deadlines").json()["items"] if d["kind"] == "breach"}
    assert board[("b-old", "awareness_due")]["due_at"] == ago(hours=8)
    assert board[("b-old", "awareness_due")]["overdue"] is True
    assert board[("b-new", "awareness_due")]["overdue"] is False
    assert board[("b-new", "awareness_due")]["alerts"] == []
    # awareness recorded later: the gap that was complete stays a finding, the row goes
    post(api, ("breach.aware", {"breach_id": "b-old", "aware_at": ago(hours=1)}, None))
    still = findings(api, "breach_awareness_not_recorded")
    assert [f["breach_id"] for f in still] == ["b-old"]
    assert "awareness recorded only at" in still[0]["detail"]
    rows = [d for d in api.get(f"{BASE}/deadlines").json()["items"] if d["id"] == "b-old"]
    assert [d["deadline"] for d in rows] == ["authority_due"]


# --- breaches: Art. 34 and voluntary notifications -------------------------------------------


def _high_risk(bid: str) -> list[tuple[str, dict[str, Any], None]]:
    return [
        ("breach.aware", {"breach_id": bid, "aware_at": ago(hours=50)}, None),
        ("breach.assessed", {"breach_id": bid, "risk": "high", "subjects_approx": 5000,
                             "records_approx": 5000, "data_categories": ["health"]}, None),
        ("breach.notified_authority", {"breach_id": bid, "authority": "Datatilsynet",
                                       "notified_at": ago(hours=40), "phase": "initial"}, None),
    ]


def test_article_34_communications(api: Api) -> None:
    exempt_c = {"ground": "c", "reason": "contact details of the subjects unknown"}
    post(
        api,
        *_high_risk("b-c"),
        ("breach.communication_exempted", {"breach_id": "b-c", **exempt_c}, None),
        ("breach.closed", {"breach_id": "b-c"}, None),
        *_high_risk("b-c-public"),
        ("breach.communication_exempted", {"breach_id": "b-c-public", **exempt_c}, None),
        ("breach.subjects_communicated", {"breach_id": "b-c-public", "public": True,
                                          "communicated_at": ago(hours=30),
                                          "channel": "press release"}, None),
        ("breach.closed", {"breach_id": "b-c-public"}, None),
        *_high_risk("b-c-ref"),
        ("breach.communication_exempted", {"breach_id": "b-c-ref", **exempt_c,
                                           "public_communication_ref": "notice 2026-11"}, None),
        ("breach.closed", {"breach_id": "b-c-ref"}, None),
        *_high_risk("b-none"),
        ("breach.closed", {"breach_id": "b-none"}, None),
        *_high_risk("b-a"),
        ("breach.communication_exempted", {"breach_id": "b-a", "ground": "a",
                                           "reason": "encrypted, key safe"}, None),
        ("breach.closed", {"breach_id": "b-a"}, None),
    )
    public = findings(api, "breach_public_communication_missing")
    assert [f["breach_id"] for f in public] == ["b-c"]
    assert public[0]["severity"] == "high" and "34(3)(c)" in public[0]["detail"]
    silent = findings(api, "breach_subjects_not_communicated")
    assert [f["breach_id"] for f in silent] == ["b-none"]
    reg = by_id(api, "breaches", "breach_id")
    assert reg["b-c"]["public_communication_required"] is True
    assert reg["b-c-public"]["public_communication"]["channel"] == "press release"
    assert reg["b-c-public"]["subjects_communicated_at"] is None  # not an individual one


def test_notifying_an_unlikely_breach_is_voluntary(api: Api) -> None:
    post(
        api,
        ("breach.aware", {"breach_id": "b-minor", "aware_at": ago(hours=100)}, None),
        ("breach.assessed", {"breach_id": "b-minor", "risk": "unlikely", "subjects_approx": 1,
                             "records_approx": 1, "data_categories": ["contact"],
                             "reasoning": "one e-mail to the wrong colleague, deleted"}, None),
        ("breach.notified_authority", {"breach_id": "b-minor", "authority": "Datatilsynet",
                                       "notified_at": ago(hours=10), "phase": "initial"}, None),
    )
    b = by_id(api, "breaches", "breach_id")["b-minor"]
    assert b["status"] == "not_required" and b["notified_at"] == ago(hours=10)
    assert not findings(api, "breach_notified_late_without_reasons")
    assert not findings(api, "breach_not_notified")


# --- rights requests --------------------------------------------------------------------------


def _received(rid: str, at: str) -> tuple[str, dict[str, Any], str]:
    return ("rights_request.received", {"request_id": rid, "right": "access",
                                        "received_at": at}, "alice@example.org")


def test_withdrawal_keeps_findings_complete_before_it(api: Api) -> None:
    # received Tuesday 2026-09-01 10:00 Oslo time: due Thursday 2026-10-01
    ids = post(
        api,
        _received("r-late", "2026-09-01T08:00:00Z"),
        ("rights_request.withdrawn", {"request_id": "r-late", "at": "2026-10-10T08:00:00Z"},
         "alice@example.org"),
        _received("r-early", "2026-09-01T08:00:00Z"),
        ("rights_request.withdrawn", {"request_id": "r-early", "at": "2026-09-20T08:00:00Z"},
         "alice@example.org"),
    )
    reqs = by_id(api, "rights-requests", "request_id")
    assert reqs["r-late"]["status"] == "withdrawn" and reqs["r-late"]["due"] == "2026-10-01"
    overdue = findings(api, "dsr_overdue")
    assert [f["request_id"] for f in overdue] == ["r-late"]  # a deadline missed stays missed
    assert overdue[0]["evidence"] == [ids[0], ids[1]]
    assert "withdrawn on 2026-10-10 without an answer, due 2026-10-01" in overdue[0]["detail"]


def test_refusal_is_judged_against_one_month(api: Api) -> None:
    post(
        api,
        _received("r-ext", "2026-09-01T08:00:00Z"),
        ("rights_request.extended", {"request_id": "r-ext", "reason": "complex, 12 systems",
                                     "subject_informed_at": "2026-09-10T08:00:00Z"},
         "alice@example.org"),
        ("rights_request.refused", {"request_id": "r-ext", "at": "2026-10-15T08:00:00Z",
                                    "reason": "manifestly excessive",
                                    "complaint_right_informed": True}, "alice@example.org"),
        _received("r-plain", "2026-09-01T08:00:00Z"),
        ("rights_request.refused", {"request_id": "r-plain", "at": "2026-10-15T08:00:00Z",
                                    "reason": "manifestly excessive",
                                    "complaint_right_informed": True}, "alice@example.org"),
        _received("r-ok", "2026-09-01T08:00:00Z"),
        ("rights_request.refused", {"request_id": "r-ok", "at": "2026-09-25T08:00:00Z",
                                    "reason": "manifestly excessive",
                                    "complaint_right_informed": True}, "alice@example.org"),
    )
    soft = findings(api, "dsr_refused_after_extension")
    assert [f["request_id"] for f in soft] == ["r-ext"]
    assert soft[0]["severity"] == "low"
    assert "contested" in soft[0]["detail"] and "Art. 12(4)" in soft[0]["detail"]
    hard = findings(api, "dsr_overdue")
    assert [f["request_id"] for f in hard] == ["r-plain"]
    assert hard[0]["severity"] == "high" and "within one month of receipt" in hard[0]["detail"]


def test_restart_on_identity_limits(api: Api) -> None:
    res = api.world.ledger.register_controller(CONTROLLER, {
        "name": "Bedre Bedrift AS", "country": "NO", "timezone": "Europe/Oslo",
        "identity_policy": "restart_on_identity", "identity_request_within_days": 7})
    assert res.status == "accepted", res
    alice = "alice@example.org"
    post(
        api,
        # asked for identity after the due date (2026-10-01): restarts nothing
        _received("r-after-due", "2026-09-01T08:00:00Z"),
        ("rights_request.identity_requested", {"request_id": "r-after-due",
                                               "at": "2026-10-05T08:00:00Z"}, alice),
        # asked 14 days after receipt: more than the 7 days configured
        _received("r-slow", "2026-11-01T08:00:00Z"),
        ("rights_request.identity_requested", {"request_id": "r-slow",
                                               "at": "2026-11-15T08:00:00Z"}, alice),
        # asked the next day: the clock waits for the subject, no finding
        _received("r-quick", "2026-11-01T08:00:00Z"),
        ("rights_request.identity_requested", {"request_id": "r-quick",
                                               "at": "2026-11-02T08:00:00Z"}, alice),
    )
    reqs = by_id(api, "rights-requests", "request_id")
    assert reqs["r-after-due"]["identity_policy"] == "restart_on_identity"
    assert (reqs["r-after-due"]["status"], reqs["r-after-due"]["due"]) == ("overdue",
                                                                           "2026-10-01")
    assert reqs["r-slow"]["status"] == "awaiting_identity"
    assert reqs["r-quick"]["status"] == "awaiting_identity"
    late = {f["request_id"]: f for f in findings(api, "dsr_identity_request_late")}
    assert set(late) == {"r-after-due", "r-slow"}
    assert "14 days after receipt" in late["r-slow"]["detail"]
    assert "7 days" in late["r-slow"]["detail"]
    assert [f["request_id"] for f in findings(api, "dsr_overdue")] == ["r-after-due"]


# --- transfers ---------------------------------------------------------------------------------


def test_transfers_know_the_exporter_and_the_history(api: Api) -> None:
    def transfer(rid: str, cc: str, mech: str, on: str, **extra: Any):  # type: ignore[no-untyped-def]
        data = {"recipient_id": rid, "destination_country": cc, "mechanism": mech,
                "data_categories": ["contact"], **extra}
        return api.event(type_="transfer.made", data=data, subject=None,
                         occurred_at=f"{on}T10:00:00Z")

    body = [
        transfer("rcp-br", "BR", "adequacy", "2026-06-01"),  # exporter: the controller, NO
        transfer("rcp-br-de", "BR", "adequacy", "2026-06-01", exporter_country="DE"),
        transfer("rcp-uk", "GB", "none", "2021-03-01"),  # the EU-UK bridge
        transfer("rcp-in-old", "IN", "scc_2010", "2022-06-01", contract_date="2020-01-15"),
        transfer("rcp-in-new", "IN", "scc_2010", "2022-06-01", contract_date="2021-10-01"),
        transfer("rcp-in-nodate", "IN", "scc_2010", "2022-06-01"),
        transfer("rcp-sh", "US", "safe_harbour", "2015-10-06"),
    ]
    # These transfers are years old: an admin opens a history-import window
    # (config.json ``history_import_until``, docs/design.md) for the load.
    api.world.ledger.ingestor.import_until = NOW + timedelta(hours=1)
    res = api.post(body).json()
    assert {r["status"] for r in res} == {"accepted"}, res
    ts = by_id(api, "transfers", "recipient_id")
    br = ts["rcp-br"]
    assert br["valid"] is True and br["exporter_country"] == "NO"
    assert len(br["warnings"]) == 1 and "EEA Agreement" in br["warnings"][0]
    assert ts["rcp-br-de"]["valid"] is True and ts["rcp-br-de"]["warnings"] == []
    assert ts["rcp-uk"]["valid"] is True and "FINPROV.10A" in ts["rcp-uk"]["reason"]
    assert ts["rcp-in-old"]["valid"] is True and ts["rcp-in-old"]["warnings"] == []
    assert ts["rcp-in-new"]["valid"] is False
    assert ts["rcp-in-nodate"]["valid"] is True
    assert "no contract date" in ts["rcp-in-nodate"]["warnings"][0]
    assert ts["rcp-sh"]["valid"] is False and "C-362/14" in ts["rcp-sh"]["reason"]
    invalid = findings(api, "transfer_without_valid_mechanism")
    flagged = {ev for f in invalid for ev in f["evidence"]}
    assert flagged == {res[4]["event_id"], res[6]["event_id"]}
