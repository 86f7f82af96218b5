"""Hypothesis properties of the deadline rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from projections.legal.breach import authority_due, to_local
from projections.legal.calendar import is_working_day
from projections.legal.rights import add_months, rights_deadlines

COUNTRIES = st.sampled_from(["NO", "DK", "SE", "DE", "FR", "IE", "GB", "NL", "PL"])
DAYS = st.dates(min_value=date(2000, 1, 1), max_value=date(2060, 12, 31))
ZONES = ["Europe/Oslo", "Europe/Copenhagen", "America/New_York"]


@given(received=DAYS, country=COUNTRIES, extended=st.booleans())
def test_due_dates_are_working_days(received: date, country: str, extended: bool) -> None:
    d = rights_deadlines(received, country, extended=extended)
    assert is_working_day(d.due, country)
    assert is_working_day(d.extended_due, country)
    assert is_working_day(d.binding_due, country)


@given(received=DAYS, country=COUNTRIES)
def test_due_never_before_same_date_next_month(received: date, country: str) -> None:
    d = rights_deadlines(received, country)
    floor = add_months(received, 1)  # same date, or the month's last day
    assert floor.day == received.day or floor.month != (floor + timedelta(days=1)).month
    assert floor <= d.due <= floor + timedelta(days=10)  # rolled over a few days at most
    assert add_months(received, 3) <= d.extended_due
    assert d.due < d.extended_due


@given(a=DAYS, b=DAYS, country=COUNTRIES)
def test_due_monotone_in_receipt(a: date, b: date, country: str) -> None:
    a, b = min(a, b), max(a, b)
    da, db = rights_deadlines(a, country), rights_deadlines(b, country)
    assert da.due <= db.due
    assert da.extended_due <= db.extended_due


@given(received=DAYS, country=COUNTRIES, days=st.integers(0, 120), extended=st.booleans())
def test_binding_is_the_earliest(received: date, country: str, days: int, extended: bool) -> None:
    d = rights_deadlines(received, country, promise_days=days, extended=extended)
    assert d.promised_due == received + timedelta(days=days)
    legal = d.extended_due if extended else d.due
    assert d.binding_due == min(legal, d.promised_due)


INSTANTS = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2060, 1, 1),
    timezones=st.sampled_from([ZoneInfo(z) for z in ZONES]),
    allow_imaginary=False,
)


@settings(max_examples=300)
@given(aware=INSTANTS, tz=st.sampled_from(ZONES))
def test_breach_due_is_exactly_72_elapsed_hours(aware: datetime, tz: str) -> None:
    due = authority_due(aware)
    assert due.tzinfo is UTC
    assert due - aware == timedelta(hours=72)
    # Elapsed time on the UTC timeline, in whole microseconds (float timestamps of
    # instants with microseconds round differently, e.g. in 2038)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert (due - epoch) - (aware.astimezone(UTC) - epoch) == timedelta(seconds=72 * 3600)
    assert to_local(due, tz) - epoch == due - epoch


@settings(max_examples=300)
@given(aware=INSTANTS, tz=st.sampled_from(ZONES))
def test_wall_clock_shift_only_across_dst(aware: datetime, tz: str) -> None:
    zone = ZoneInfo(tz)
    start, end = aware.astimezone(zone), to_local(authority_due(aware), tz)
    wall = end.replace(tzinfo=None) - start.replace(tzinfo=None)
    shift = wall - timedelta(hours=72)
    assert shift in (timedelta(hours=-1), timedelta(0), timedelta(hours=1))
    assert (shift != timedelta(0)) == (start.utcoffset() != end.utcoffset())
    assert shift == end.utcoffset() - start.utcoffset()


def test_dst_changes_are_actually_exercised() -> None:
    # the property above must see both outcomes: an instant just before Oslo's spring change
    aware = datetime(2026, 3, 28, 12, 0, tzinfo=ZoneInfo("Europe/Oslo"))
    end = to_local(authority_due(aware), "Europe/Oslo")
    assert (end.hour, end.day) == (13, 31)
    ny = datetime(2026, 11, 1, 0, 30, tzinfo=ZoneInfo("America/New_York"))
    end = to_local(authority_due(ny), "America/New_York")
    assert (end.hour, end.minute, end.day) == (23, 30, 3)
