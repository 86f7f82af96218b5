"""The ReadModelStore contract, run on every backend (SQLite and PostgreSQL)."""

from __future__ import annotations

import orjson
import pytest
from conftest import StoreFactory
from eventsourcing.persistence import IntegrityError, Tracking

from projections.store import RECORD_FIELDS, ReadModelStore, Writes, dumps


def view(kind: str, doc: dict, subject: str | None, at: str, event_id: str) -> dict:
    """What ``records()`` gives back: every field of the kind (null unless stored), the
    stored ones, and the three columns."""
    return {**dict.fromkeys(RECORD_FIELDS[kind]), **doc, "subject": subject,
            "occurred_at": at, "event_id": event_id}


def _writes(n: int) -> Writes:
    w = Writes()
    w.entities[("rights_request", "C1", f"r{n}")] = {"request_id": f"r{n}", "n": n}
    w.consents.append(("C1", "psn:a", "marketing", f"2026-01-0{n}T00:00:00.000Z", n, f"e{n}",
                       "given", dumps({"method": "web"})))
    w.records.append(("C1", "processing", n, "2026-01-01T00:00:00.000Z", "psn:a", "act",
                      f"e{n}", dumps({"n": n})))
    w.findings.append(("C1", n, "processing_without_consent", dumps({"code": "x"})))
    return w


def test_commit_writes_rows_and_position_together(store: ReadModelStore) -> None:
    assert store.max_tracking_id("log/0") is None
    store.commit(_writes(1), Tracking("log/0", 10))
    assert store.max_tracking_id("log/0") == 10
    assert store.entity("rights_request", "C1", "r1") == {"request_id": "r1", "n": 1}
    assert store.consent_rows("C1", "psn:a")[0][:5] == (
        "marketing", "2026-01-01T00:00:00.000Z", 1, "e1", "given")
    assert store.records("C1", "processing", subject="psn:a") == [
        view("processing", {"n": 1}, "psn:a", "2026-01-01T00:00:00.000Z", "e1")]
    # code and controller come from the row's columns
    assert store.findings("C1") == [{"code": "processing_without_consent", "controller": "C1"}]


def test_a_position_that_does_not_move_forward_writes_nothing(store: ReadModelStore) -> None:
    store.commit(_writes(1), Tracking("log/0", 10))
    before = store.dump()
    for stale in (10, 9):  # the same batch again (a replay after a crash), or an older one
        with pytest.raises(IntegrityError):
            store.commit(_writes(2), Tracking("log/0", stale))
        assert store.dump() == before
        assert store.max_tracking_id("log/0") == 10
    store.commit(_writes(2), Tracking("log/0", 11))
    assert store.entity("rights_request", "C1", "r2") is not None


def test_positions_are_per_source_and_partition(store: ReadModelStore) -> None:
    store.commit(Writes(), Tracking("auditledger.events.v1/0", 5))
    store.commit(Writes(), Tracking("auditledger.events.v1/1", 3))
    assert store.max_tracking_id("auditledger.events.v1/0") == 5
    assert store.max_tracking_id("auditledger.events.v1/1") == 3
    assert store.max_tracking_id("log/0") is None


def test_entity_upsert_replaces_the_document(store: ReadModelStore) -> None:
    store.commit(_writes(1), Tracking("log/0", 1))
    w = Writes()
    w.entities[("rights_request", "C1", "r1")] = {"request_id": "r1", "n": 99}
    store.commit(w, Tracking("log/0", 2))
    assert store.entities("rights_request", "C1") == [{"request_id": "r1", "n": 99}]


def test_dump_is_canonical_and_reset_empties(store_factory: StoreFactory) -> None:
    a, b = store_factory(), store_factory()
    a.commit(_writes(1), Tracking("log/0", 1))
    a.commit(_writes(2), Tracking("log/0", 2))
    w = _writes(1)
    w2 = _writes(2)
    w.entities.update(w2.entities)
    for t in ("consents", "records", "findings"):
        getattr(w, t).extend(reversed(getattr(w2, t)))  # another order, another batching
    b.commit(w, Tracking("log/0", 2))
    assert a.dump() == b.dump()
    a.reset()
    assert a.max_tracking_id("log/0") is None
    assert a.dump() == b"# entities\n# consents\n# records\n# findings\n"


AWKWARD = 'tab\there, newline\nthere, back\\slash, "quotes", \\N, comma, æøå 🦊, \r'


def test_awkward_text_and_nulls_are_stored_exactly(store: ReadModelStore) -> None:
    """Every write path (SQLite's JSON rows, PostgreSQL's COPY) must give back the exact
    text it was given: the escapes of COPY's text format and of JSON are not the data."""
    doc = {"detail": AWKWARD, "empty": "", "none": None}
    w = Writes()
    w.entities[("rights_request", "C1", AWKWARD)] = doc
    w.consents.append(("C1", AWKWARD, AWKWARD, "2026-01-01T00:00:00.000Z", 1, AWKWARD,
                       "given", dumps(doc)))
    w.records.append(("C1", "processing", 1, "2026-01-01T00:00:00.000Z", None, None, "e1",
                      dumps(doc)))
    w.records.append(("C1", "processing", 2, "2026-01-01T00:00:00.000Z", AWKWARD, "",
                      "e2", doc))  # a dict document is serialised by the store
    w.findings.append(("C1", 1, AWKWARD, dumps(doc)))
    store.commit(w, Tracking("log/0", 1))
    assert store.entity("rights_request", "C1", AWKWARD) == doc
    assert store.consent_rows("C1", AWKWARD) == [
        (AWKWARD, "2026-01-01T00:00:00.000Z", 1, AWKWARD, "given", doc)]
    first = view("processing", doc, None, "2026-01-01T00:00:00.000Z", "e1")
    second = view("processing", doc, AWKWARD, "2026-01-01T00:00:00.000Z", "e2")
    assert store.records("C1", "processing", subject=AWKWARD) == [second]
    assert store.records("C1", "processing", key="") == [second]
    assert store.records("C1", "processing") == [first, second]
    assert store.findings("C1") == [{**doc, "code": AWKWARD, "controller": "C1"}]
    dump = store.dump()
    assert b'"C1","processing",1,"2026-01-01T00:00:00.000Z",null,null,"e1"' in dump
    assert orjson.dumps(dumps(doc)) in dump  # the document text, as one JSON string
