"""Working days of a controller's country: public holidays from the ``holidays`` package.

Saturday and Sunday are never working days; the public holidays are the national ones the
``holidays`` package knows for the country (no regional subdivisions). One holiday set is
built per (country, year) and cached: the rules call these functions for every request.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

import holidays


class UnknownCountryError(ValueError):
    """A country code the holiday calendar does not know (ISO 3166-1 alpha-2 expected)."""


@cache
def _supported() -> frozenset[str]:
    return frozenset(c.upper() for c in holidays.list_supported_countries())


def check_country(country: str) -> str:
    """Return ``country`` upper-cased, or raise ``UnknownCountryError``."""
    cc = country.strip().upper()
    if len(cc) != 2 or cc not in _supported():
        raise UnknownCountryError(f"unknown country code: {country!r}")
    return cc


@cache
def public_holidays(country: str, year: int) -> frozenset[date]:
    """The national public holidays of ``country`` in ``year`` (cached per country and year)."""
    cc = check_country(country)
    return frozenset(holidays.country_holidays(cc, years=year).keys())


def is_working_day(d: date, country: str) -> bool:
    """False on Saturday, Sunday and the country's public holidays."""
    return d.weekday() < 5 and d not in public_holidays(country, d.year)


def next_working_day(d: date, country: str) -> date:
    """``d`` itself when it is a working day, else the first working day after it.

    Regulation 1182/71 Art. 3(4): a period ending on a Saturday, Sunday or public holiday
    ends at the end of the following working day.
    """
    check_country(country)
    while not is_working_day(d, country):
        d += timedelta(days=1)
    return d
