"""The legal-v2 facts survive both read-model stores (SQLite and PostgreSQL): transfer
warnings and exporter, breach awareness from the processor, the awareness board row."""

from __future__ import annotations

from datetime import UTC, datetime

from projection_streams import CID, Scenario

from ledger.clock import FixedClock
from projections import queries as q
from projections.store import ReadModelStore


def at(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def test_transfer_exporter_and_warnings_round_trip(scenario: Scenario, store: ReadModelStore):
    def transfer(rid: str, cc: str, mech: str, when: str, **extra: object) -> str:
        return scenario.add("transfer.made", {"recipient_id": rid, "destination_country": cc,
                                              "mechanism": mech, "data_categories": ["contact"],
                                              **extra}, at(when))

    br = transfer("rcp-br", "BR", "adequacy", "2026-06-01T10:00")
    de = transfer("rcp-de", "BR", "adequacy", "2026-06-01T10:00", exporter_country="DE")
    old = transfer("rcp-in", "IN", "scc_2010", "2022-06-01T10:00", contract_date="2020-01-15")
    scenario.project(store)
    ts = {t["event_id"]: t for t in q.transfers(store, CID)}
    assert ts[br]["exporter_country"] == "NO" and ts[br]["valid"] is True
    assert len(ts[br]["warnings"]) == 1 and "EEA Agreement" in ts[br]["warnings"][0]
    assert (ts[de]["exporter_country"], ts[de]["warnings"]) == ("DE", [])
    assert ts[old]["contract_date"] == "2020-01-15" and ts[old]["warnings"] == []
    assert ts[br]["contract_date"] is None  # every transfer row has the same keys


def test_processor_awareness_and_the_board(scenario: Scenario, store: ReadModelStore):
    scenario.add("breach.detected", {"breach_id": "b1", "detected_at": "2026-12-01T08:00:00Z",
                                     "description": "backup exposed"}, at("2026-12-01T08:00"))
    proc = scenario.add("breach.processor_notified", {
        "breach_id": "b1", "recipient_id": "rcp-hosting",
        "notified_at": "2026-12-01T09:00:00Z"}, at("2026-12-01T09:00"))
    scenario.add("breach.aware", {"breach_id": "b1", "aware_at": "2026-12-02T09:00:00Z"},
                 at("2026-12-02T09:00"))
    det = scenario.add("breach.detected", {"breach_id": "b2",
                                           "detected_at": "2026-12-01T08:00:00Z",
                                           "description": "odd traffic"}, at("2026-12-01T08:00"))
    scenario.project(store)
    now = FixedClock(at("2026-12-05T08:00:01"))
    reg = {b["breach_id"]: b for b in q.breaches(store, CID, clock=now)}
    assert reg["b1"]["aware_at"] == "2026-12-01T09:00:00.000Z"
    assert reg["b1"]["authority_due"] == "2026-12-04T09:00:00.000Z"
    assert reg["b2"]["unaware_for_seconds"] == 96 * 3600 + 1
    found = [f for f in q.findings(store, CID, clock=now)
             if f["code"] in ("breach_not_notified", "breach_awareness_not_recorded")]
    assert sorted((f["code"], f["breach_id"], tuple(f["evidence"])) for f in found) == [
        ("breach_awareness_not_recorded", "b2", (det,)),
        ("breach_not_notified", "b1", (proc,)),
    ]
    board = [(d["id"], d["deadline"], d["overdue"]) for d in q.deadlines(store, CID, clock=now)
             if d["kind"] == "breach"]
    assert board == [("b2", "awareness_due", True), ("b1", "authority_due", True)]
