"""One definition of a valid time, at ingest, for the envelope and every data field
(issue #14, item 2); an event the checks fail on never costs the batch its answer."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.routes.ingest import GroupCommit
from ledger.clock import InvalidTime, date_problem, parse_rfc3339, time_problem
from ledger.ingest import Staged
from ledger.service import Ledger
from tests.conftest import World

BAD_TIMES = {
    "2026-06-30T23:59:60Z": "leap second",
    "0000-01-01T00:00:00Z": "calendar",
    "0001-01-01T00:00:00+23:59": "offset",
    "1899-12-31T23:59:59Z": "range",
    "1900-01-01T00:30:00+01:00": "range",  # 1899 in UTC
    "9899-12-31T23:30:00-01:00": "range",  # 9900 in UTC
    "9999-12-31T23:59:59Z": "range",
    "2026-02-30T10:00:00Z": "calendar",
    "2026-01-01T24:00:00Z": "range",
    "2026-01-01T10:00:00": "offset",
    "2026-01-01T10:00:00+05:60": "offset",
    "2026-01-01 10:00:00Z": "RFC 3339",
}
GOOD_TIMES = ["1900-01-01T00:00:00Z", "2026-05-14T09:12:03.123456789+02:00",
              "9899-12-31T23:59:59.999Z", "2026-01-01T00:00:00-18:00"]


@pytest.mark.parametrize("value", sorted(BAD_TIMES))
def test_the_definition_refuses(value: str) -> None:
    problem = time_problem(value)
    assert problem is not None
    with pytest.raises(InvalidTime):
        parse_rfc3339(value)


@pytest.mark.parametrize("value", GOOD_TIMES)
def test_the_definition_accepts_and_survives_arithmetic(value: str) -> None:
    assert time_problem(value) is None
    at = parse_rfc3339(value)
    for years in (-5, 5):  # what the read side does with it: UTC, deadlines, retention
        assert (at.astimezone(UTC) + timedelta(days=365 * years)).year > 1890


def test_dates() -> None:
    assert date_problem("2024-02-29") is None
    assert date_problem("2026-02-29") and date_problem("0000-01-01")
    assert date_problem("1899-12-31") and date_problem("2026-1-01")


def expect(world: World, env: dict[str, Any], code: str, where: str) -> None:
    (res,) = world.ledger.submit([env])
    assert (res.status, res.code) == ("rejected", code), res
    assert res.detail and res.detail.startswith(where), res.detail


@pytest.mark.parametrize("value", sorted(BAD_TIMES))
def test_occurred_at(world: World, value: str) -> None:
    expect(world, world.event(occurred_at=value), "schema_violation", "occurred_at:")


DATA_FIELDS = [
    ("consent.given", {"purposes": ["x"], "method": "web", "notice_version": "v"},
     "expires_at"),
    ("rights_request.received", {"request_id": "r1", "right": "access"}, "received_at"),
    ("breach.aware", {"breach_id": "b1"}, "aware_at"),
    ("breach.detected", {"breach_id": "b1", "description": "lost laptop"}, "detected_at"),
]


@pytest.mark.parametrize(("type_", "data", "name"), DATA_FIELDS)
@pytest.mark.parametrize("value", ["2026-06-30T23:59:60Z", "0000-01-01T00:00:00Z",
                                   "0001-01-01T00:00:00+23:59"])
def test_every_data_time(world: World, type_: str, data: dict, name: str,
                         value: str) -> None:
    subject = None if type_.startswith("breach.") else "alice@example.org"
    good = world.event(type_=type_, data={**data, name: "2026-11-20T10:00:00Z"},
                       subject=subject)
    assert world.ledger.submit([good])[0].status == "accepted"
    bad = world.event(type_=type_, data={**data, name: value}, subject=subject)
    expect(world, bad, "schema_violation", f"data.{name}:")


def test_a_date_field(world: World) -> None:
    data = {"recipient_id": "r1", "name": "Mailer AB", "kind": "processor", "country": "SE"}
    ok = world.event(type_="recipient.registered", subject=None,
                     data={**data, "dpa_date": "2024-02-29"})
    assert world.ledger.submit([ok])[0].status == "accepted"
    bad = world.event(type_="recipient.registered", subject=None,
                      data={**data, "dpa_date": "0000-01-01"})
    expect(world, bad, "schema_violation", "data.dpa_date:")


def test_every_time_field_of_every_schema_has_the_format() -> None:
    """The format checker is the one definition: a time field without ``format`` would
    slip past it, so every ``*_at`` property must carry one."""
    from ledger.schemas import default_schemas

    schemas = default_schemas()
    for type_ in schemas.types:
        raw = schemas.schema_for(type_)
        for name, prop in raw.get("properties", {}).items():
            if name.endswith("_at") or name in ("at", "valid_from"):
                ref = prop.get("$ref", "")
                target = raw["$defs"][ref.rsplit("/", 1)[1]] if ref else prop
                assert target.get("format") == "date-time", (type_, name)


def test_a_bad_time_costs_the_batch_nothing(world: World) -> None:
    good = [world.event() for _ in range(3)]
    batch = [good[0], world.event(occurred_at="2026-06-30T23:59:60Z"), good[1],
             world.event(occurred_at="0001-01-01T00:00:00+23:59"), good[2]]
    got = [(r.status, r.code) for r in world.ledger.submit(batch)]
    assert got == [("accepted", None), ("rejected", "schema_violation")] * 2 + [
        ("accepted", None)]


class FaultyLedger(Ledger):
    """The real ledger with one injected fault: a batch holding ``b"boom"`` fails, in
    either of the two ways the API commits (``submit``, or ``prepare`` then ``commit``)."""

    def submit(self, items: Any) -> Any:
        if any(i == b"boom" for i in items):
            raise RuntimeError("injected")
        return super().submit(items)

    def commit(self, staged: Staged) -> Any:
        if any(i == b"boom" for i in staged.items):
            raise RuntimeError("injected")
        return super().commit(staged)


def test_group_commit_fails_only_the_failing_request(world: World) -> None:
    world.ledger.close()
    ledger = FaultyLedger.open(world.data_dir, clock=world.clock, verifier_workers=0)
    try:
        group = GroupCommit(ledger, threading.Lock())
        good = [world.event(), world.event()]
        slots: list[dict[str, Any]] = [{"done": False}, {"done": False}]
        group._run([([b"boom"], slots[0]), (good, slots[1])], ledger.prepare([b"boom", *good]))
        assert isinstance(slots[0]["error"], RuntimeError)
        assert [r.status for r in slots[1]["results"]] == ["accepted", "accepted"]
    finally:
        ledger.close()
        world.ledger = Ledger.open(world.data_dir, clock=world.clock, verifier_workers=0)


def test_the_checks_failing_is_the_events_rejection(world: World) -> None:
    """An input our own code trips over (here: not JSON at all, not bytes) is rejected
    alone; the good event beside it is stored."""
    got = world.ledger.submit([12345, world.event()])  # type: ignore[list-item]
    assert (got[0].status, got[0].code) == ("rejected", "schema_violation")
    assert got[1].status == "accepted"


def test_import_window_and_lateness(world: World) -> None:
    late = world.event(occurred_at="2026-11-10T12:00:00Z")  # 10 days before the clock
    expect(world, late, "clock_skew", "occurred_at is more than 3 days in the past")
    recent = world.event(occurred_at="2026-11-18T12:00:00Z")
    assert world.ledger.submit([recent])[0].status == "accepted"
    ing = world.ledger.ingestor
    ing.import_until = datetime(2026, 11, 21, tzinfo=UTC)  # what the config's window sets
    assert world.ledger.submit([late])[0].status == "accepted"
    world.clock.advance(timedelta(days=2))  # the window closed by itself
    expect(world, world.event(occurred_at="2026-11-12T12:00:00Z"), "clock_skew",
           "occurred_at is more than 3 days")


two = st.integers(0, 99).map(lambda i: f"{i:02d}")


@settings(max_examples=2000, deadline=None)
@given(year=st.integers(1890, 9999), month=two, day=two, hour=two, minute=two,
       second=two, frac=st.one_of(st.just(""), st.text("0123456789", min_size=1,
                                                        max_size=9).map("." .__add__)),
       off=st.one_of(st.just("Z"), st.tuples(st.sampled_from("+-"), two, two).map(
           lambda t: f"{t[0]}{t[1]}:{t[2]}")))
def test_the_fast_path_agrees_with_the_full_definition(
    year: int, month: str, day: str, hour: str, minute: str, second: str, frac: str,
    off: str,
) -> None:
    """``parse_rfc3339`` takes the C parser for ordinary times; on every generated
    string it must reach the full definition's verdict and value."""
    from ledger.clock import _TIME, _parse_time_fully

    value = f"{year:04d}-{month}-{day}T{hour}:{minute}:{second}{frac}{off}"
    match = _TIME.fullmatch(value)
    assert match is not None
    try:
        fast: datetime | None = parse_rfc3339(value)
    except InvalidTime:
        fast = None
    try:
        full: datetime | None = _parse_time_fully(match)
    except InvalidTime:
        full = None
    assert (fast is None) == (full is None), value
    if fast is not None and full is not None:
        assert fast == full and fast.utcoffset() == full.utcoffset(), value
