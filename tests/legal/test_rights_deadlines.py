"""Art. 12(3) deadlines: the worked examples of LEGAL_RULES.md and the rules around them."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from projections.legal.calendar import UnknownCountryError, is_working_day, next_working_day
from projections.legal.rights import (
    IdentityPolicy,
    UnknownTimeZoneError,
    add_months,
    clock_start,
    extension_valid,
    receipt_date,
    rights_deadlines,
)

# --- worked examples (LEGAL_RULES.md) -------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "country", "due"),
    [
        # 3 September -> 3 October (if a working day): Friday 3 October 2025
        (date(2025, 9, 3), "NO", date(2025, 10, 3)),
        # ... and when it is not: Sunday 3 October 2027 rolls to Monday 4 October
        (date(2027, 9, 3), "NO", date(2027, 10, 4)),
        # ... or a public holiday: 3 October 2025 is German Unity Day (Friday) -> Monday
        (date(2025, 9, 3), "DE", date(2025, 10, 6)),
        # 31 March -> 30 April (if a working day): Wednesday 30 April 2025
        (date(2025, 3, 31), "NO", date(2025, 4, 30)),
        # 31 January 2023 -> 28 February 2023 (Tuesday)
        (date(2023, 1, 31), "GB", date(2023, 2, 28)),
        (date(2023, 1, 31), "NO", date(2023, 2, 28)),
        # 20 November 2026 (Norway) -> 21 December 2026 (20 December is a Sunday)
        (date(2026, 11, 20), "NO", date(2026, 12, 21)),
    ],
)
def test_worked_examples_due(received: date, country: str, due: date) -> None:
    assert rights_deadlines(received, country).due == due


def test_worked_example_extended_in_time() -> None:
    d = rights_deadlines(date(2026, 11, 24), "NO", extended=True)
    assert d.extended_due == date(2027, 2, 24)
    assert d.extended_due.weekday() == 2  # Wednesday
    assert d.binding_due == date(2027, 2, 24)
    assert d.due == date(2026, 12, 24)


def test_worked_example_leap_year_promise_binds_the_earlier() -> None:
    d = rights_deadlines(date(2024, 1, 31), "NO", promise_days=30)
    assert d.promised_due == date(2024, 3, 1)  # 30 calendar days
    assert d.due == date(2024, 2, 29)  # the law: Thursday 29 February
    assert d.binding_due == date(2024, 2, 29)


# --- month arithmetic (Regulation 1182/71 Art. 3) -----------------------------------------


@pytest.mark.parametrize(
    ("d", "n", "expected"),
    [
        (date(2023, 1, 31), 1, date(2023, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2024, 3, 31), 1, date(2024, 4, 30)),
        (date(2024, 11, 30), 3, date(2025, 2, 28)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2026, 10, 31), 3, date(2027, 1, 31)),
        (date(2026, 5, 14), 0, date(2026, 5, 14)),
        (date(2026, 5, 14), 25, date(2028, 6, 14)),
    ],
)
def test_add_months(d: date, n: int, expected: date) -> None:
    assert add_months(d, n) == expected


def test_add_months_rejects_negative() -> None:
    with pytest.raises(ValueError):
        add_months(date(2026, 1, 1), -1)


# --- promise and binding due ---------------------------------------------------------------


def test_promise_is_calendar_days_not_rolled() -> None:
    # received Fri 2026-11-20 + 30 days = Sunday 2026-12-20: the promise is not rolled
    d = rights_deadlines(date(2026, 11, 20), "NO", promise_days=30)
    assert d.promised_due == date(2026, 12, 20)
    assert not is_working_day(d.promised_due, "NO")
    assert d.binding_due == date(2026, 12, 20)


def test_promise_later_than_law_does_not_bind() -> None:
    d = rights_deadlines(date(2023, 2, 1), "NO", promise_days=40)
    assert d.due == date(2023, 3, 1)
    assert d.promised_due == date(2023, 3, 13)
    assert d.binding_due == d.due


def test_without_promise() -> None:
    d = rights_deadlines(date(2026, 11, 20), "NO")
    assert d.promised_due is None
    assert d.binding_due == d.due
    assert d.extended is False


def test_extended_with_promise_binds_the_promise() -> None:
    d = rights_deadlines(date(2026, 11, 24), "NO", promise_days=30, extended=True)
    assert d.binding_due == date(2026, 12, 24) == d.promised_due


def test_extended_due_is_three_months_rolled() -> None:
    # 2026-11-20 + 3 months = Saturday 2027-02-20 -> Monday 2027-02-22
    d = rights_deadlines(date(2026, 11, 20), "NO")
    assert d.extended_due == date(2027, 2, 22)
    assert d.binding_due == d.due  # not extended: the extension does not bind


def test_bad_inputs() -> None:
    with pytest.raises(UnknownCountryError):
        rights_deadlines(date(2026, 1, 1), "ZZ")
    with pytest.raises(ValueError):
        rights_deadlines(date(2026, 1, 1), "NO", promise_days=-1)


def test_holiday_chain_rolls_over_easter() -> None:
    # Norway, Easter 2026: Thu 2 Apr, Fri 3 Apr, Sat, Sun, Mon 6 Apr -> Tue 7 April
    assert next_working_day(date(2026, 4, 2), "NO") == date(2026, 4, 7)
    assert rights_deadlines(date(2026, 3, 2), "NO").due == date(2026, 4, 7)


# --- receipt date in the controller's time zone --------------------------------------------


def test_receipt_date_uses_controller_time_zone() -> None:
    at = "2026-11-20T23:30:00Z"  # 00:30 on 21 November in Oslo
    assert receipt_date(at, "Europe/Oslo") == date(2026, 11, 21)
    assert receipt_date(at, "UTC") == date(2026, 11, 20)
    assert receipt_date(datetime(2026, 11, 20, 23, 30, tzinfo=UTC), "America/New_York") == date(
        2026, 11, 20
    )


def test_receipt_date_bad_input() -> None:
    with pytest.raises(UnknownTimeZoneError):
        receipt_date("2026-11-20T12:00:00Z", "Mars/Base")
    with pytest.raises(ValueError):
        receipt_date("2026-11-20T12:00:00", "Europe/Oslo")


# --- extension told in time ----------------------------------------------------------------


def test_extension_told_on_due_day_is_valid() -> None:
    assert extension_valid(date(2026, 11, 24), date(2026, 12, 24), "NO", "Europe/Oslo")


def test_extension_told_after_due_is_invalid() -> None:
    assert not extension_valid(date(2026, 11, 24), date(2026, 12, 28), "NO", "Europe/Oslo")


def test_extension_in_time_counts_the_rolled_due() -> None:
    # received 2026-11-20: due rolls from Sunday 20 Dec to Monday 21 Dec
    assert extension_valid(date(2026, 11, 20), date(2026, 12, 21), "NO", "Europe/Oslo")
    assert not extension_valid(date(2026, 11, 20), date(2026, 12, 22), "NO", "Europe/Oslo")


def test_extension_instant_judged_in_controller_time_zone() -> None:
    told = "2026-12-24T23:30:00Z"  # still 24 Dec in UTC, already 25 Dec in Oslo
    received = "2026-11-24T09:00:00Z"
    assert not extension_valid(received, told, "NO", "Europe/Oslo")
    assert extension_valid(received, told, "NO", "UTC")


# --- identity policy -----------------------------------------------------------------------


R, REQ, VER = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 20)


@pytest.mark.parametrize(
    ("policy", "requested", "verified", "start"),
    [
        ("strict", None, None, R),
        ("strict", REQ, VER, R),
        (IdentityPolicy.STRICT, REQ, None, R),
        ("restart_on_identity", None, None, R),
        ("restart_on_identity", REQ, VER, VER),
        ("restart_on_identity", REQ, None, None),  # waiting for the subject: not started
        ("restart_on_identity", VER, REQ, R),  # verified before any request: receipt
        ("restart_on_identity", None, VER, R),  # verified without a request: receipt
    ],
)
def test_clock_start(policy, requested, verified, start) -> None:  # type: ignore[no-untyped-def]
    assert clock_start(R, policy, requested, verified) == start


def test_restart_moves_the_due_date() -> None:
    start = clock_start(R, "restart_on_identity", REQ, VER)
    assert start is not None
    assert rights_deadlines(start, "NO").due == date(2026, 4, 20)
    # 2 April 2026 is Maundy Thursday in Norway: strict due rolls to Tuesday 7 April
    assert rights_deadlines(R, "NO").due == date(2026, 4, 7)


def test_unknown_policy() -> None:
    with pytest.raises(ValueError):
        clock_start(R, "lenient")
