"""Working days: weekends, national holidays from ``holidays``, roll forward, cache."""

from __future__ import annotations

from datetime import date

import pytest

from projections.legal.calendar import (
    UnknownCountryError,
    check_country,
    is_working_day,
    next_working_day,
    public_holidays,
)


@pytest.mark.parametrize(
    ("d", "country", "working"),
    [
        (date(2026, 12, 19), "NO", False),  # Saturday
        (date(2026, 12, 20), "NO", False),  # Sunday
        (date(2026, 12, 21), "NO", True),
        (date(2026, 12, 25), "NO", False),  # Christmas Day
        (date(2026, 12, 26), "NO", False),  # Saturday and 2nd Christmas Day
        (date(2026, 5, 18), "NO", True),
        (date(2026, 5, 17), "NO", False),  # Constitution Day (a Sunday)
        (date(2027, 5, 17), "NO", False),  # Constitution Day (a Monday)
        (date(2027, 5, 17), "DK", False),  # Whit Monday in Denmark
        (date(2027, 5, 18), "DK", True),
        (date(2025, 10, 3), "DE", False),  # German Unity Day
        (date(2025, 10, 3), "NO", True),
        (date(2023, 5, 5), "DK", False),  # Great Prayer Day, a holiday until 2023
        (date(2024, 4, 26), "DK", True),  # abolished from 2024
    ],
)
def test_is_working_day(d: date, country: str, working: bool) -> None:
    assert is_working_day(d, country) is working


def test_next_working_day() -> None:
    assert next_working_day(date(2026, 12, 21), "NO") == date(2026, 12, 21)
    assert next_working_day(date(2026, 12, 25), "NO") == date(2026, 12, 28)
    assert next_working_day(date(2026, 12, 31), "NO") == date(2026, 12, 31)
    assert next_working_day(date(2027, 1, 1), "NO") == date(2027, 1, 4)  # across the year


def test_country_codes() -> None:
    assert check_country(" no ") == "NO"
    for bad in ("ZZ", "NOR", "", "N"):
        with pytest.raises(UnknownCountryError):
            check_country(bad)


def test_holidays_cached_per_country_and_year() -> None:
    public_holidays.cache_clear()
    first = public_holidays("NO", 2031)
    assert public_holidays("NO", 2031) is first
    assert public_holidays.cache_info().hits >= 1
    assert public_holidays("NO", 2032) is not first
    assert date(2031, 12, 25) in first
