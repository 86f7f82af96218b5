"""One event the read side cannot interpret is that event's problem alone.

Events are written into the log *beneath* ingest (``Scenario.append_raw``: ``Log.append``
of a signed ``Prepared``), as logs written before ingest refused such values hold them.
Each must become an ``unprocessable_event`` finding of its controller, the rest of the
log must be applied as if it were absent, a rebuild must give the same bytes — on both
stores, through one applier and through a split catch-up — and the queries must answer.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import StoreFactory
from eventsourcing.persistence import Tracking
from projection_streams import CID, Scenario

from ledger.clock import FixedClock
from ledger.signing import public_key_text
from projections import queries, unprocessable
from projections.runner import ProjectionRunner, rebuild
from projections.shard import ShardProcess
from projections.store import ReadModelStore, Writes, dumps

OTHER = "SE-5560000001"
NOW = FixedClock(datetime(2026, 12, 1, 9, tzinfo=UTC))
OFF_THE_CALENDAR = "0001-01-01T00:00:00+23:59"  # its UTC instant is before year 1
LEAP_SECOND = "2026-06-30T23:59:60Z"
YEAR_ZERO = "0000-01-01T00:00:00Z"


def _poisoned(s: Scenario) -> dict[str, str]:
    """Good and bad events of two controllers; returns {event_id: field} of the bad."""
    s.ledger.register_controller(OTHER, {"name": "Annat AB", "country": "SE",
                                         "timezone": "Europe/Stockholm"})
    s.ledger.register_producer(OTHER, "app", public_key_text(s.key), ["*"])
    s.add("breach.aware", {"breach_id": "b-ok", "aware_at": "2026-03-01T10:00:00Z"},
          "2026-03-01T10:00:00Z")
    bad = {
        s.append_raw("breach.aware", {"breach_id": "b-bad", "aware_at": "2026-03-02T10:00:00Z"},
                     OFF_THE_CALENDAR): "occurred_at",
        s.append_raw("breach.aware", {"breach_id": "b-leap", "aware_at": LEAP_SECOND},
                     "2026-07-01T00:00:00Z"): "data.aware_at",
        s.append_raw("rights_request.received",
                     {"request_id": "r-bad", "right": "access", "received_at": YEAR_ZERO},
                     "2026-03-01T10:00:00Z", subject="ann"): "data.received_at",
        s.append_raw("consent.given",
                     {"purposes": ["marketing"], "method": "web", "notice_version": "v1",
                      "expires_at": "9999-12-31T23:59:59-23:59"},
                     "2026-03-01T10:00:00Z", subject="bob"): "data.expires_at",
        s.append_raw("subject.erased", {"keys_destroyed_at": "2026-02-30T00:00:00Z"},
                     "2026-03-03T10:00:00Z", subject="cat"): "data.keys_destroyed_at",
        # a broadcast type (both appliers of a split catch-up see it)
        s.append_raw("recipient.registered",
                     {"recipient_id": "rcp-x", "name": "X", "kind": "processor",
                      "country": "SE", "dpa_date": "0000-01-01"},
                     "2026-03-03T10:00:00Z"): "data.dpa_date",
        # no time at fault: the handler itself fails (a required field is missing)
        s.append_raw("rights_request.received",
                     {"request_id": "r-noright", "received_at": "2026-03-01T10:00:00Z"},
                     "2026-03-01T10:00:00Z"): "KeyError",
        s.append_raw("breach.aware", {"breach_id": "b-other-bad", "aware_at": YEAR_ZERO},
                     "2026-03-01T10:00:00Z", controller=OTHER): "data.aware_at",
    }
    # the other controller's good, overdue breach, and more good events after the bad
    s.add("rights_request.received", {"request_id": "r-ok", "right": "access",
                                      "received_at": "2026-03-01T10:00:00Z"},
          "2026-03-01T10:00:00Z", subject="dan")
    s.pending.append(_other(s, "breach.aware", {"breach_id": "b-other",
                                                "aware_at": "2026-03-01T10:00:00Z"}))
    s.add("consent.given", {"purposes": ["marketing"], "method": "web", "notice_version": "v1",
                            "evidence_ref": "form-1"}, "2026-03-04T10:00:00Z", subject="bob")
    s.flush()
    return bad


def _other(s: Scenario, type_: str, data: dict[str, object]) -> dict[str, object]:
    from ledger.envelope import complete

    return complete({"type": type_, "controller": OTHER, "data": data,
                     "occurred_at": "2026-03-01T10:00:00Z"}, s.key, "app")


def _check(store: ReadModelStore, s: Scenario, bad: dict[str, str]) -> None:
    assert store.max_tracking_id("log/0") == s.ledger.log.last_seq()
    found = {f["evidence"][0]: f for c in (CID, OTHER)
             for f in queries.findings(store, c, code=unprocessable.CODE, clock=NOW)}
    assert set(found) == set(bad)
    for eid, field in bad.items():
        f = found[eid]
        assert f["severity"] == "high" and field in f["detail"] and eid in f["detail"]
    assert found[next(e for e, fl in bad.items() if fl == "data.aware_at"
                      )]["controller"] in (CID, OTHER)
    # the bad events were not applied; the good ones around them were
    assert [b["breach_id"] for b in queries.breaches(store, CID, clock=NOW)] == ["b-ok"]
    assert [r["request_id"] for r in queries.rights_requests(store, CID, clock=NOW)] == ["r-ok"]
    assert [r["recipient_id"] for r in queries.recipients(store, CID)] == []
    bob = queries.consents(store, CID, Scenario.subject("bob"), clock=NOW)
    assert [p["state"] for p in bob["purposes"]] == ["given"]
    assert queries.consents(store, CID, Scenario.subject("cat"), clock=NOW)["erased"] is None
    # the other controller's deadline is unaffected
    other = queries.deadlines(store, OTHER, clock=NOW)
    assert [(d["id"], d["overdue"]) for d in other] == [("b-other", True)]
    assert queries.report(store, CID, clock=NOW)["findings"]


def test_unprocessable_events_become_findings_and_rebuild_is_identical(
    scenario: Scenario, store_factory: StoreFactory
) -> None:
    bad = _poisoned(scenario)
    live = store_factory()
    runner = ProjectionRunner(scenario.source(), live, batch_size=3)  # many small batches
    assert runner.run_once() == scenario.ledger.log.last_seq()
    _check(live, scenario, bad)
    fresh = store_factory()
    rebuild(scenario.source(), fresh)
    _check(fresh, scenario, bad)
    assert live.dump() == fresh.dump()


def test_a_split_catch_up_isolates_them_the_same_way(
    scenario: Scenario, store_factory: StoreFactory
) -> None:
    bad = _poisoned(scenario)
    for i in range(60):  # enough to make the run a catch-up (more than two batches)
        scenario.add("consent.given", {"purposes": ["p"], "method": "web",
                                       "notice_version": "v1", "evidence_ref": "x"},
                     "2026-03-05T10:00:00Z", subject=f"s{i}")
    scenario.flush()
    started: list[ShardProcess] = []
    real = ShardProcess.__init__

    def spy(self: ShardProcess, *a: object) -> None:
        real(self, *a)  # type: ignore[arg-type]
        started.append(self)

    split = store_factory()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ShardProcess, "__init__", spy)
        ProjectionRunner(scenario.source(), split, batch_size=10).run_once()
    assert len(started) == 1  # the catch-up was split
    _check(split, scenario, bad)
    one = store_factory()
    runner = ProjectionRunner(scenario.source(), one, batch_size=10)
    runner.split = runner.writer_process = False
    runner.run_once()
    assert split.dump() == one.dump()


def test_queries_answer_when_a_stored_value_cannot_be_interpreted(
    scenario: Scenario, store_factory: StoreFactory
) -> None:
    """A store written before the checks existed may hold such values: that one case is
    listed as ``unprocessable`` and named by a finding; the rest is answered."""
    scenario.add("breach.aware", {"breach_id": "b-ok", "aware_at": "2026-03-01T10:00:00Z"},
                 "2026-03-01T10:00:00Z")
    store = store_factory()
    scenario.project(store)
    w = Writes()
    w.entities[("breach", CID, "b-old")] = dumps(
        {"breach_id": "b-old", "aware": {"aware_at": OFF_THE_CALENDAR, "event_id": "e1"},
         "events": ["e1"]})
    w.entities[("rights_request", CID, "r-old")] = dumps(
        {"request_id": "r-old", "right": "access", "received_at": "9999-12-31T23:00:00Z",
         "received_event_id": "e2", "state": "open", "events": ["e2"]})
    store.commit(w, Tracking("tamper/0", 1))  # not the runner's position
    by_id = {b["breach_id"]: b for b in queries.breaches(store, CID, clock=NOW)}
    assert by_id["b-old"]["status"] == "unprocessable" and by_id["b-ok"]["status"] == "overdue"
    (req,) = queries.rights_requests(store, CID, clock=NOW)
    assert req["status"] == "unprocessable" and req["due"] is None
    assert [d["id"] for d in queries.deadlines(store, CID, clock=NOW)] == ["b-ok"]
    codes = {(f["code"], f.get("breach_id") or f.get("request_id"))
             for f in queries.findings(store, CID, clock=NOW)}
    assert {(unprocessable.CODE, "b-old"), (unprocessable.CODE, "r-old"),
            ("breach_not_notified", "b-ok")} <= codes
    assert queries.report(store, CID, clock=NOW)["breaches"]


@pytest.mark.parametrize("value", [OFF_THE_CALENDAR, LEAP_SECOND, YEAR_ZERO,
                                   "9999-12-31T23:59:59-23:59", "2026-02-30T00:00:00Z",
                                   "2026-03-01T10:00:00", "0001-06-01T00:00:00Z", 17])
def test_instant_refuses_what_cannot_be_interpreted(value: object) -> None:
    with pytest.raises(ValueError):
        unprocessable.instant(value)


def test_instant_reads_rfc3339_with_any_offset() -> None:
    assert unprocessable.instant("2026-03-01T10:00:00.5+01:00") == datetime(
        2026, 3, 1, 9, 0, 0, 500000, tzinfo=UTC)
    assert unprocessable.instant("2026-03-01t10:00:00z").hour == 10
    assert ("aware_at",) in dict(unprocessable.time_fields()["breach.aware"])


def test_a_body_that_is_no_envelope_is_routed_and_recorded(
    scenario: Scenario, store_factory: StoreFactory
) -> None:
    """Routing (the reader process of a split catch-up) and the applier take it in their
    stride: a finding without evidence (no event id can be read), nothing else."""
    from projections import routing
    from projections.projection import AuditProjection

    mine, other = routing.split([(5, "consent.given", CID, b"not json"),
                                 (6, "breach.aware", CID, b'{"data": []}')])
    assert len(mine) + len(other) == 2
    store = store_factory()
    scenario.project(store)
    projection = AuditProjection(store)
    writes = projection.prepare([(10**6, "consent.given", CID, b"not json")])
    (row,) = writes.findings
    assert row[2] == unprocessable.CODE and '"evidence":[]' in row[3]
    assert "envelope" in row[3]


def test_a_kafka_record_without_headers_or_key_is_read_from_its_envelope() -> None:
    from kafka.consumer.fetcher import ConsumerRecord

    from projections.kafka_source import _row

    def record(key: bytes | None, value: bytes, headers: list) -> ConsumerRecord:
        return ConsumerRecord("t", 0, 0, 41, 0, 0, key, value, headers, None, 0, 0, 0)

    body = b'{"type": "breach.aware", "controller": "NO-1"}'
    assert _row(record(None, body, [])) == (42, "breach.aware", "NO-1", body)
    assert _row(record(b"NO-2", body, [("type", b"x.y")])) == (42, "x.y", "NO-2", body)
    assert _row(record(None, b"\xff", [])) == (42, "", "", b"\xff")
