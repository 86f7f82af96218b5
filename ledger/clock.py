"""The one clock. Everything that needs "now" takes a ``Clock`` so tests never sleep."""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock a test moves by hand."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._at += delta


def parse_rfc3339(value: str) -> datetime:
    """Parse a valid time (definition below): an offset is required (naive times are
    ambiguous in law), leap seconds and out-of-range instants raise ``InvalidTime``."""
    return _parse_time(value)


def format_rfc3339(dt: datetime) -> str:
    """UTC, millisecond precision, 'Z' suffix: the one way times are written out."""
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# -- the one definition of a valid time ------------------------------------------------
#
# Every timestamp the ledger accepts (the envelope's ``occurred_at`` and every date-time
# field of every event schema) is checked by ``time_problem`` at ingest and again by
# ``auditledger verify``; every date field by ``date_problem``. A valid time is
#   - RFC 3339 ``YYYY-MM-DDTHH:MM:SS[.fraction]`` with an offset, ``Z`` or ``±hh:mm``
#     (upper-case ``T`` and ``Z``; 1-9 fraction digits, kept to the microsecond);
#   - a real calendar date, hour 0-23, minute 0-59, second 0-59 (no leap second ``:60``:
#     Python, PostgreSQL and most read-side tools cannot hold it);
#   - an offset of at most ±18:00 (the widest any time-zone library accepts);
#   - once converted to UTC, between ``MIN_TIME`` (1900-01-01T00:00:00Z) and ``MAX_TIME``
#     (9899-12-31T23:59:59.999999Z): every deadline, retention period or extension the
#     read side computes (years either way) stays inside what ``datetime`` can hold.
# A valid date is ``YYYY-MM-DD``, a real calendar date, year 1900-9899.

MIN_YEAR, MAX_YEAR = 1900, 9899
MIN_TIME = datetime(MIN_YEAR, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(MAX_YEAR, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
MAX_OFFSET = timedelta(hours=18)

_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:(Z)|([+-])(\d{2}):(\d{2}))"
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


class InvalidTime(ValueError):
    """A string that is not a valid time (or date) by the definition above."""


def _parse_time(value: str) -> datetime:
    """Parse with a small cache of the last valid strings: ingest reads each event's
    ``occurred_at`` twice (the schema's ``date-time`` format, then ``parse_rfc3339``),
    and a ``datetime`` is immutable. Invalid strings are not cached (they raise)."""
    if type(value) is str:
        return _parse_cached(value)
    return _parse_time_uncached(value)


def _parse_time_uncached(value: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidTime("not a string")
    m = _TIME.fullmatch(value)
    if m is None:
        raise InvalidTime("not an RFC 3339 date-time with an offset (Z or ±hh:mm)")
    # Fast path (every ingested event takes it at least once): a year well inside the
    # range and an offset within bounds cannot leave the range in UTC, and the C parser
    # then checks the calendar and the clock fields (it refuses second 60 and hour 24,
    # and truncates the fraction to microseconds, as the full path below does).
    if MIN_YEAR < int(m.group(1)) < MAX_YEAR and (
        m.group(8) or (int(m.group(11)) <= 59
                       and int(m.group(10)) * 60 + int(m.group(11)) <= 18 * 60)
    ):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass  # the full path names the reason
    return _parse_time_fully(m)


_parse_cached = functools.lru_cache(maxsize=4096)(_parse_time_uncached)


def _parse_time_fully(m: re.Match[str]) -> datetime:
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction, zulu, sign, off_h, off_m = m.groups()[6:]
    if second == 60:
        raise InvalidTime("second 60: leap seconds are not accepted (use :59)")
    if hour > 23 or minute > 59 or second > 59:
        raise InvalidTime("hour, minute or second out of range")
    try:
        local = datetime(year, month, day, hour, minute, second,
                         int((fraction or "0").ljust(6, "0")[:6]))
    except ValueError as exc:
        raise InvalidTime(f"not a calendar date and time ({exc})") from None
    if zulu:
        offset = timedelta(0)
    else:
        if int(off_m) > 59:
            raise InvalidTime("offset minutes out of range")
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if offset > MAX_OFFSET:
            raise InvalidTime("offset beyond ±18:00")
        if sign == "-":
            offset = -offset
    if not (MIN_TIME + offset <= local.replace(tzinfo=UTC) <= MAX_TIME + offset):
        raise InvalidTime(f"outside the accepted range (UTC years {MIN_YEAR}-{MAX_YEAR})")
    return local.replace(tzinfo=timezone(offset))


def time_problem(value: str) -> str | None:
    """Why ``value`` is not a valid time, or None if it is (see the definition above)."""
    try:
        _parse_time(value)
    except InvalidTime as exc:
        return str(exc)
    return None


def date_problem(value: str) -> str | None:
    """Why ``value`` is not a valid ``YYYY-MM-DD`` date (years 1900-9899), or None."""
    m = _DATE.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        return "not a YYYY-MM-DD date"
    try:
        day = date(*(int(g) for g in m.groups()))
    except ValueError as exc:
        return f"not a calendar date ({exc})"
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        return f"outside the accepted range (years {MIN_YEAR}-{MAX_YEAR})"
    return None
