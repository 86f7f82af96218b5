"""Arts. 33–34: the 72-hour clock, breach states and obligations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ledger.clock import format_rfc3339
from projections.legal.breach import (
    BreachState,
    authority_due,
    breach_state,
    format_local,
    obligations,
    public_communication_required,
    to_local,
)

OSLO = ZoneInfo("Europe/Oslo")


def test_worked_example_christmas_eve_oslo() -> None:
    aware = datetime(2026, 12, 24, 16, 0, tzinfo=OSLO)  # Thursday
    due = authority_due(aware)
    local = to_local(due, "Europe/Oslo")
    assert (local.year, local.month, local.day, local.hour, local.minute) == (2026, 12, 27, 16, 0)
    assert local.strftime("%A") == "Sunday"
    assert format_rfc3339(due) == "2026-12-27T15:00:00.000Z"
    assert format_local(due, "Europe/Oslo") == "2026-12-27T16:00:00.000+01:00"


def test_due_is_utc() -> None:
    due = authority_due(datetime(2026, 12, 24, 16, 0, tzinfo=OSLO))
    assert due.utcoffset() == timedelta(0)


def test_dst_start_moves_local_wall_clock_not_the_deadline() -> None:
    # Europe/Oslo springs forward on Sunday 2026-03-29
    aware = datetime(2026, 3, 27, 12, 0, tzinfo=OSLO)
    due = authority_due(aware)
    assert due - aware == timedelta(hours=72)
    assert format_local(due, "Europe/Oslo") == "2026-03-30T13:00:00.000+02:00"


def test_dst_end() -> None:
    # falls back on Sunday 2026-10-25
    aware = datetime(2026, 10, 23, 12, 0, tzinfo=OSLO)
    assert format_local(authority_due(aware), "Europe/Oslo") == "2026-10-26T11:00:00.000+01:00"


def test_naive_aware_at_rejected() -> None:
    with pytest.raises(ValueError):
        authority_due(datetime(2026, 12, 24, 16, 0))


AWARE = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
ON_TIME = AWARE + timedelta(hours=72)  # the deadline instant itself is in time
LATE = ON_TIME + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("risk", "notified_at", "reasons", "now", "state"),
    [
        (None, None, False, AWARE + timedelta(hours=1), "open"),
        ("risk", None, False, AWARE + timedelta(hours=71), "open"),
        ("high", None, False, ON_TIME, "open"),
        (None, None, False, LATE, "overdue"),  # unassessed: presumed notifiable
        ("risk", None, False, LATE, "overdue"),
        ("high", None, False, AWARE + timedelta(days=30), "overdue"),
        ("unlikely", None, False, AWARE + timedelta(days=30), "not_required"),
        ("unlikely", None, False, AWARE + timedelta(hours=1), "not_required"),
        ("risk", AWARE + timedelta(hours=5), False, LATE, "notified_on_time"),
        ("risk", ON_TIME, False, LATE, "notified_on_time"),
        (None, AWARE + timedelta(hours=5), False, LATE, "notified_on_time"),
        ("risk", LATE, True, LATE, "notified_late_with_reasons"),
        ("high", LATE, False, LATE, "notified_late_without_reasons"),
        # notified although assessed unlikely: voluntary, so never late (Art. 33(1))
        ("unlikely", LATE, False, LATE, "not_required"),
        ("unlikely", AWARE + timedelta(hours=5), False, LATE, "not_required"),
    ],
)
def test_breach_state(risk, notified_at, reasons, now, state) -> None:  # type: ignore[no-untyped-def]
    got = breach_state(AWARE, risk, notified_at, reasons, now)
    assert got == BreachState(state)
    assert got == state


def test_breach_state_bad_risk() -> None:
    with pytest.raises(ValueError):
        breach_state(AWARE, "medium", None, False, AWARE)


@pytest.mark.parametrize(
    ("risk", "exemption", "expected"),
    [
        (None, None, (True, True, False)),  # presumed notifiable until assessed
        ("unlikely", None, (True, False, False)),
        ("risk", None, (True, True, False)),
        ("high", None, (True, True, True)),
        ("high", "a", (True, True, False)),
        ("high", "b", (True, True, False)),
        ("high", "c", (True, True, False)),
        ("high", "art34_3_a", (True, True, False)),
    ],
)
def test_obligations(risk, exemption, expected) -> None:  # type: ignore[no-untyped-def]
    got = obligations(risk, exemption)
    assert set(got) == {"record", "notify_authority", "communicate_subjects"}
    assert (got["record"], got["notify_authority"], got["communicate_subjects"]) == expected


def test_public_communication_only_for_exemption_c() -> None:
    assert public_communication_required("high", "c")
    assert not public_communication_required("high", "a")
    assert not public_communication_required("high", None)
    assert not public_communication_required("risk", "c")


def test_unknown_exemption() -> None:
    with pytest.raises(ValueError):
        obligations("high", "d")
