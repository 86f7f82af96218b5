"""The projections apply LEGAL_RULES.md: consents, processing, transfers, rights requests,
breaches, the record of processing — each checked on both read-model stores."""

from __future__ import annotations

from datetime import UTC, datetime

from projection_streams import ACTIVITIES, CID, RECIPIENTS, Scenario

from ledger.clock import FixedClock
from projections import queries as q
from projections.store import ReadModelStore


def at(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def clock(s: str) -> FixedClock:
    return FixedClock(at(s))


def codes(store: ReadModelStore, now: str) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {}
    for f in q.findings(store, CID, clock=clock(now)):
        assert set(f) >= {"code", "controller", "severity", "detail", "evidence"}
        out.setdefault(f["code"], []).append(f["evidence"])
    return out


def setup(s: Scenario) -> None:
    for r in RECIPIENTS:
        s.add("recipient.registered", r, at("2020-01-01T00:00"))
    for a in ACTIVITIES:
        s.add("processing_activity.declared", a, at("2020-01-01T00:00"))


# -- consents and processing -------------------------------------------------------------

def test_consent_state_as_of_and_processing_checks(scenario: Scenario, store: ReadModelStore):
    setup(scenario)
    alice = scenario.subject("alice@example.org")
    given = scenario.add("consent.given", {"purposes": ["marketing"], "method": "web_banner",
                                           "notice_version": "v1", "evidence_ref": "ev1"},
                         at("2026-03-01T10:00"), "alice@example.org")
    ok = scenario.add("processing.performed", {"activity_id": "newsletter", "basis": "A6-1-a",
                                               "data_categories": ["contact"]},
                      at("2026-03-02T10:00"), "alice@example.org")
    withdrawn = scenario.add("consent.withdrawn", {"purposes": ["marketing"],
                                                   "method": "account_page"},
                             at("2026-03-03T10:00"), "alice@example.org")
    after = scenario.add("processing.performed", {"activity_id": "newsletter", "basis": "A6-1-a",
                                                  "data_categories": ["contact"]},
                         at("2026-03-04T10:00"), "alice@example.org")
    never = scenario.add("processing.performed", {"activity_id": "newsletter",
                                                  "basis": "A6-1-a", "purpose": "marketing",
                                                  "data_categories": ["contact"]},
                         at("2026-03-04T10:00"), "bob@example.org")
    lone = scenario.add("consent.withdrawn", {"purposes": ["profiling"], "method": "email"},
                        at("2026-03-05T10:00"), "carol@example.org")
    scenario.project(store)

    def state(as_of: str) -> str:
        doc = q.consents(store, CID, alice, as_of=as_of)
        return doc["purposes"][0]["state"]

    assert state("2026-03-01T09:59:59Z") == "none"
    assert state("2026-03-01T10:00:00Z") == "given"
    assert state("2026-03-03T11:00:00+01:00") == "withdrawn"  # offsets are understood
    assert state("2026-03-03T10:59:00+01:00") == "given"
    doc = q.consents(store, CID, alice, as_of="2026-06-01T00:00:00Z")["purposes"][0]
    assert doc["method"] == "account_page" and doc["evidence"] == [given, withdrawn]
    found = codes(store, "2026-06-01T00:00")
    assert [withdrawn, after] in found["processing_after_withdrawal"]
    assert [never] in found["processing_without_consent"]
    assert [lone] in found["withdrawal_without_consent"]
    assert not any(ok in ev for evs in found.values() for ev in evs)


def test_expired_consent_does_not_cover_processing(scenario: Scenario, store: ReadModelStore):
    setup(scenario)
    g = scenario.add("consent.given", {"purposes": ["marketing"], "method": "web",
                                       "notice_version": "v1", "evidence_ref": "e",
                                       "expires_at": "2026-04-01T00:00:00Z"},
                     at("2026-03-01T10:00"), "dave@example.org")
    p = scenario.add("processing.performed", {"activity_id": "newsletter", "basis": "A6-1-a",
                                              "data_categories": ["contact"]},
                     at("2026-04-02T10:00"), "dave@example.org")
    scenario.project(store)
    dave = scenario.subject("dave@example.org")
    assert q.consents(store, CID, dave, as_of="2026-04-02T00:00:00Z")["purposes"][0][
        "state"] == "expired"
    assert [g, p] in codes(store, "2026-05-01T00:00")["processing_without_consent"]


def test_erasure_is_a_fact_and_later_processing_a_finding(
    scenario: Scenario, store: ReadModelStore
) -> None:
    """``subject.erased``: the consent view shows it from the instant the keys were
    destroyed; processing of the pseudonym after that instant is
    ``processing_after_erasure`` — also when the erasure was applied in an earlier run
    (the check then reads it from the store)."""
    setup(scenario)
    erin = scenario.subject("erin@example.org")
    given = scenario.add("consent.given", {"purposes": ["marketing"], "method": "web",
                                           "notice_version": "v1", "evidence_ref": "e"},
                         at("2026-03-01T10:00"), "erin@example.org")
    before = scenario.add("processing.performed", {"activity_id": "billing", "basis": "A6-1-b",
                                                   "data_categories": ["contact"]},
                          at("2026-03-02T10:00"), "erin@example.org")
    erased = scenario.add("subject.erased", {"request_id": "dsr-9",
                                             "keys_destroyed_at": "2026-03-03T11:00:00+01:00",
                                             "key_ids": ["k1"]},
                          at("2026-03-03T10:05"), "erin@example.org")
    same_run = scenario.add("processing.performed", {"activity_id": "newsletter",
                                                     "basis": "A6-1-a",
                                                     "data_categories": ["contact"]},
                            at("2026-03-03T10:30"), "erin@example.org")
    scenario.project(store)
    later_run = scenario.add("processing.performed", {"activity_id": "billing",
                                                      "basis": "A6-1-b",
                                                      "data_categories": ["contact"]},
                             at("2026-04-01T10:00"), "erin@example.org")
    other = scenario.add("processing.performed", {"activity_id": "billing", "basis": "A6-1-b",
                                                  "data_categories": ["contact"]},
                         at("2026-04-01T10:00"), "frank@example.org")
    scenario.project(store)

    assert q.consents(store, CID, erin, as_of="2026-03-03T09:59:59Z")["erased"] is None
    view = q.consents(store, CID, erin, as_of="2026-03-03T10:00:00Z")
    assert view["erased"] == {"at": "2026-03-03T10:00:00.000Z", "request_id": "dsr-9",
                              "event_id": erased}
    assert view["purposes"][0]["evidence"] == [given]  # the history is kept
    found = codes(store, "2026-06-01T00:00")["processing_after_erasure"]
    assert sorted(found) == sorted([[erased, same_run], [erased, later_run]])
    assert not any(e in ev for ev in found for e in (before, other))
    records = q.processing(store, CID, subject=erin)
    assert [r["event_id"] for r in records] == [before, same_run, later_run]
    # Stored without nulls and without the columns; read back whole.
    assert records[0] == {"activity_id": "billing", "basis": "A6-1-b", "purpose": None,
                          "data_categories": ["contact"], "operation": None,
                          "subject_count": None, "special_category_condition": None,
                          "subject": erin, "occurred_at": "2026-03-02T10:00:00.000Z",
                          "event_id": before}


# -- transfers -----------------------------------------------------------------------------

def test_transfers_are_judged_on_their_day(scenario: Scenario, store: ReadModelStore):
    setup(scenario)

    def transfer(cc: str, mech: str, when: str, **extra: object) -> str:
        return scenario.add("transfer.made", {"recipient_id": f"rcp-{cc}",
                                              "destination_country": cc, "mechanism": mech,
                                              "data_categories": ["contact"], **extra},
                            at(when))

    ps_ok = transfer("US", "privacy_shield", "2020-07-15T12:00")
    ps_bad = transfer("US", "privacy_shield", "2020-07-16T12:00")
    scc_ok = transfer("IN", "scc_2010", "2022-12-27T12:00")
    scc_bad = transfer("IN", "scc_2010", "2022-12-28T12:00")
    d1 = transfer("IN", "derogation_49_1_b", "2024-01-01T12:00")
    d2 = transfer("IN", "derogation_49_1_b", "2024-02-01T12:00")
    d3 = transfer("BR", "derogation_49_1_a", "2024-02-01T12:00", recurring=True)
    eea = transfer("SE", "none", "2024-02-01T12:00")
    scenario.project(store)
    verdicts = {t["event_id"]: t for t in q.transfers(store, CID)}
    assert verdicts[ps_ok]["valid"] and not verdicts[ps_bad]["valid"]
    assert verdicts[scc_ok]["valid"] and not verdicts[scc_bad]["valid"]
    assert verdicts[eea]["valid"] and verdicts[eea]["reason"] == "EEA"
    assert verdicts[d1]["occasional_only"] and verdicts[ps_bad]["judged_on"] == "2020-07-16"
    assert {t["event_id"] for t in q.transfers(store, CID, valid=False)} == {ps_bad, scc_bad}
    found = codes(store, "2026-01-01T00:00")
    assert sorted(found["transfer_without_valid_mechanism"]) == sorted([[ps_bad], [scc_bad]])
    assert sorted(found["recurring_transfer_on_derogation"]) == sorted([[d1, d2], [d3]])


# -- rights requests -----------------------------------------------------------------------

def request(s: Scenario, rid: str, when: str) -> str:
    return s.add("rights_request.received", {"request_id": rid, "right": "access",
                                             "received_at": when}, when, "erin@example.org")


def test_rights_deadlines_statuses_and_findings(scenario: Scenario, store: ReadModelStore):
    r1 = request(scenario, "r1", "2026-11-20T10:00:00Z")  # Norway: 20 Dec is a Sunday
    r2 = request(scenario, "r2", "2026-11-24T10:00:00Z")
    ext2 = scenario.add("rights_request.extended", {"request_id": "r2", "reason": "volume",
                                                    "subject_informed_at": "2026-12-01T09:00:00Z"},
                        "2026-12-01T09:00:00Z")
    request(scenario, "r3", "2026-11-24T10:00:00Z")
    ext3 = scenario.add("rights_request.extended", {"request_id": "r3", "reason": "volume",
                                                    "subject_informed_at": "2027-01-05T09:00:00Z"},
                        "2027-01-05T09:00:00Z")
    r4 = request(scenario, "r4", "2026-11-20T10:00:00Z")
    done4 = scenario.add("rights_request.fulfilled", {"request_id": "r4",
                                                      "at": "2026-12-21T12:00:00Z"},
                         "2026-12-21T12:00:00Z")
    scenario.project(store)

    def req(rid: str, now: str) -> dict:
        rows = {r["request_id"]: r for r in q.rights_requests(store, CID, clock=clock(now))}
        return rows[rid]

    v = req("r1", "2026-12-01T00:00")
    assert (v["status"], v["due"], v["extended_due"], v["promised_due"], v["binding_due"]) == (
        "open", "2026-12-21", "2027-02-22", "2026-12-20", "2026-12-20")
    assert list(v)[:9] == ["request_id", "subject", "right", "status", "received_at", "due",
                           "extended_due", "promised_due", "binding_due"]
    assert req("r1", "2026-12-21T22:59")["status"] == "open"  # 23:59 in Oslo
    assert req("r1", "2026-12-21T23:00")["status"] == "overdue"
    v2 = req("r2", "2026-12-28T00:00")
    assert (v2["status"], v2["extended_due"], v2["binding_due"]) == (
        "extended", "2027-02-24", "2026-12-24")
    assert req("r3", "2026-12-01T00:00")["status"] == "open"  # the late extension is void
    assert req("r4", "2027-03-01T00:00")["status"] == "fulfilled"

    found = codes(store, "2026-12-22T12:00")
    assert [r1] in found["dsr_overdue"] and [r1] in found["dsr_promise_missed"]
    assert [r4, done4] in found["dsr_promise_missed"]  # answered 21 Dec, promised 20 Dec
    assert not any(r4 in e for e in found["dsr_overdue"])  # but within the law
    assert [r2, ext2] not in found.get("dsr_extension_not_notified_in_time", [])
    later = codes(store, "2027-01-06T12:00")
    assert any(ext3 in e for e in later["dsr_extension_not_notified_in_time"])
    # What is due, soonest first.
    dl = q.deadlines(store, CID, clock=clock("2026-12-01T00:00"))
    assert [d["due_at"] for d in dl] == sorted(d["due_at"] for d in dl)
    assert dl[0]["kind"] == "rights_request" and dl[0]["due"] == "2026-12-20"


# -- breaches -------------------------------------------------------------------------------

def breach(s: Scenario, bid: str, aware: str) -> str:
    s.add("breach.detected", {"breach_id": bid, "detected_at": aware,
                              "description": "stolen laptop"}, aware)
    return s.add("breach.aware", {"breach_id": bid, "aware_at": aware}, aware)


def test_breach_clock_states_and_obligations(scenario: Scenario, store: ReadModelStore):
    a1 = breach(scenario, "b1", "2026-12-24T16:00:00+01:00")  # Thursday, Oslo
    a2 = breach(scenario, "b2", "2026-12-24T15:00:00Z")
    late = scenario.add("breach.notified_authority", {
        "breach_id": "b2", "authority": "Datatilsynet", "notified_at": "2026-12-28T15:00:00Z",
        "phase": "initial"}, "2026-12-28T15:00:00Z")
    breach(scenario, "b3", "2026-12-24T15:00:00Z")
    scenario.add("breach.assessed", {"breach_id": "b3", "risk": "unlikely", "subjects_approx": 1,
                                     "records_approx": 1, "data_categories": ["contact"]},
                 "2026-12-25T15:00:00Z")
    breach(scenario, "b4", "2026-12-24T15:00:00Z")
    scenario.add("breach.assessed", {"breach_id": "b4", "risk": "high", "subjects_approx": 9,
                                     "records_approx": 9, "data_categories": ["health"]},
                 "2026-12-25T15:00:00Z")
    breach(scenario, "b5", "2026-12-24T15:00:00Z")
    scenario.add("breach.assessed", {"breach_id": "b5", "risk": "high", "subjects_approx": 9,
                                     "records_approx": 9, "data_categories": ["health"]},
                 "2026-12-25T15:00:00Z")
    scenario.add("breach.communication_exempted", {"breach_id": "b5", "ground": "a",
                                                   "reason": "encrypted, key safe"},
                 "2026-12-25T16:00:00Z")
    scenario.project(store)

    def b(bid: str, now: str) -> dict:
        return {x["breach_id"]: x for x in q.breaches(store, CID, clock=clock(now))}[bid]

    v = b("b1", "2026-12-27T15:00")
    assert (v["status"], v["aware_at"], v["authority_due"]) == (
        "open", "2026-12-24T15:00:00.000Z", "2026-12-27T15:00:00.000Z")
    assert list(v)[:7] == ["breach_id", "status", "aware_at", "authority_due", "risk",
                           "notified_at", "obligations"]
    assert b("b1", "2026-12-27T15:01")["status"] == "overdue"
    assert b("b2", "2027-01-01T00:00")["status"] == "notified_late_without_reasons"
    v3 = b("b3", "2027-01-01T00:00")
    assert v3["status"] == "not_required" and v3["obligations"] == {
        "record": True, "notify_authority": False, "communicate_subjects": False}
    assert b("b4", "2027-01-01T00:00")["obligations"]["communicate_subjects"] is True
    assert b("b5", "2027-01-01T00:00")["obligations"]["communicate_subjects"] is False
    found = codes(store, "2027-01-01T00:00")
    assert [a2, late] in found["breach_notified_late_without_reasons"]
    assert any(a1 in e for e in found["breach_not_notified"])
    assert "breach_not_notified" not in codes(store, "2026-12-27T15:00")


# -- record of processing --------------------------------------------------------------------

def test_ropa_completeness_per_activity(scenario: Scenario, store: ReadModelStore):
    setup(scenario)
    bad = dict(ACTIVITIES[1], activity_id="export", transfers=[
        {"recipient_id": "rcp-hosting", "destination_country": "IN", "mechanism": "none"}])
    scenario.add("processing_activity.declared", bad, at("2020-01-01T00:00"))
    scenario.project(store)
    rec = q.ropa(store, CID, clock=clock("2026-01-01T00:00"))
    by_id = {a["activity_id"]: a for a in rec["activities"]}
    assert by_id["newsletter"]["complete"] and by_id["billing"]["complete"]
    assert by_id["export"]["missing"] == ["transfer_safeguard:rcp-hosting"]
    assert by_id["support"]["missing"] == ["transfer_undeclared:rcp-support"]
    assert rec["complete"] is False
    found = codes(store, "2026-01-01T00:00")
    assert len(found["ropa_incomplete"]) == 2


def test_unknown_controller_raises(store: ReadModelStore) -> None:
    import pytest

    with pytest.raises(q.UnknownControllerError):
        q.rights_requests(store, "XX-1")
