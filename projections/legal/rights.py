"""Deadlines of data-subject rights requests (GDPR Art. 12(3)).

Months are counted as Regulation (EEC, Euratom) No 1182/71, Art. 3 says: the day of receipt
is not counted; a period of months ends on the day of the last month with the same date as
the receipt (or that month's last day when it has no such date); a period ending on a
Saturday, Sunday or public holiday of the controller's country ends on the next working day.

Everything here is a pure function of dates; time zones only enter when a receipt instant
is turned into the controller's local receipt date (``receipt_date``).
"""

from __future__ import annotations

import calendar as _cal
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ledger.clock import parse_rfc3339
from projections.legal.calendar import check_country, next_working_day

#: Art. 12(3): one month, extendable by two further months.
DUE_MONTHS = 1
EXTENDED_MONTHS = 3


class UnknownTimeZoneError(ValueError):
    """A time zone name ``zoneinfo`` does not know."""


class IdentityPolicy(StrEnum):
    """When the clock starts if the controller asked the subject to prove identity."""

    STRICT = "strict"  # from receipt, always (default)
    RESTART_ON_IDENTITY = "restart_on_identity"  # from identity_verified (UK ICO practice)


@dataclass(frozen=True, slots=True)
class RightsDeadlines:
    """The dates of one request. ``binding_due`` is the one missed first."""

    received: date  # the start date of the clock (receipt, or identity verified)
    due: date  # receipt + 1 month, rolled to a working day
    extended_due: date  # receipt + 3 months, rolled to a working day
    promised_due: date | None  # receipt + N calendar days (not rolled), when promised
    binding_due: date  # min(legal date in force, promised_due)
    extended: bool  # whether ``extended_due`` is the legal date in force


def zone(tz: str) -> ZoneInfo:
    """``ZoneInfo(tz)``, or ``UnknownTimeZoneError`` with a one-line reason."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise UnknownTimeZoneError(f"unknown time zone: {tz!r}") from exc


def add_months(d: date, n: int) -> date:
    """The same day of the month ``n`` months later, or that month's last day.

    Requires ``n >= 0``. ``add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)``.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    month0 = d.month - 1 + n
    year, month = d.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(d.day, _cal.monthrange(year, month)[1]))


def period_end(start: date, months: int, country: str) -> date:
    """End of a period of ``months`` months from ``start`` (1182/71 Art. 3), rolled."""
    return next_working_day(add_months(start, months), country)


def rights_deadlines(
    received: date,
    country: str,
    promise_days: int | None = None,
    extended: bool = False,
) -> RightsDeadlines:
    """All deadlines of a request whose clock starts on ``received`` (local date).

    ``extended`` must be True only for an extension told to the subject in time (see
    ``extension_valid``); otherwise the original ``due`` stays the legal date in force.
    ``promise_days`` is the controller's stricter promise ("within 30 days"): receipt + N
    calendar days, deliberately **not** rolled to a working day (the controller chose the
    wording; the regulation's roll applies to periods set by EU law).
    """
    cc = check_country(country)
    if promise_days is not None and promise_days < 0:
        raise ValueError("promise_days must be >= 0")
    due = period_end(received, DUE_MONTHS, cc)
    extended_due = period_end(received, EXTENDED_MONTHS, cc)
    promised = None if promise_days is None else received + timedelta(days=promise_days)
    legal = extended_due if extended else due
    binding = legal if promised is None else min(legal, promised)
    return RightsDeadlines(received, due, extended_due, promised, binding, extended)


def receipt_date(received_at: datetime | str, tz: str) -> date:
    """The calendar date of a receipt instant in the controller's time zone.

    ``received_at`` is an aware datetime or an RFC 3339 string with an offset.
    """
    at = parse_rfc3339(received_at) if isinstance(received_at, str) else received_at
    if at.tzinfo is None:
        raise ValueError("received_at must carry an offset")
    return at.astimezone(zone(tz)).date()


def _local_date(value: date | datetime | str, tz: str) -> date:
    if isinstance(value, datetime | str):
        return receipt_date(value, tz)
    return value


def extension_valid(
    received: date | datetime | str,
    subject_informed_at: date | datetime | str,
    country: str,
    tz: str,
) -> bool:
    """True when the subject was told of the extension within one month of receipt.

    The month ends at the end of the (rolled) ``due`` day in the controller's time zone, so
    an extension told on the due day itself is in time. Instants are turned into local
    dates in ``tz``; plain dates are taken as already local.
    """
    start = _local_date(received, tz)
    told = _local_date(subject_informed_at, tz)
    return told <= period_end(start, DUE_MONTHS, country)


#: Default longest delay, in days from receipt, for asking the subject to prove identity
#: that a controller can justify under ``restart_on_identity`` (LEGAL_RULES.md; the ICO
#: expects the request "as soon as possible"): configurable per controller
#: (``controller.registered.identity_request_within_days``).
IDENTITY_REQUEST_WITHIN_DAYS = 10


def clock_start(
    received: date,
    policy: IdentityPolicy | str = IdentityPolicy.STRICT,
    identity_requested: date | None = None,
    identity_verified: date | None = None,
    due: date | None = None,
) -> date | None:
    """The date the Art. 12(3) period runs from, under the controller's identity policy.

    - ``strict``: always ``received``.
    - ``restart_on_identity``: when an identity check was requested (on or after receipt)
      and came before verification, the period runs from ``identity_verified``; while it is
      requested but not yet verified the clock has not started: ``None``.
      Without a request (or a verification that predates it) it runs from ``received``.
    - ``due`` is the original due date (receipt + 1 month, rolled): an identity request
      made after it restarts nothing — the request was already overdue — so the period
      runs from ``received``. On the due date itself the request is still in time.
    """
    policy = IdentityPolicy(policy)
    if policy is IdentityPolicy.STRICT or identity_requested is None:
        return received
    if due is not None and identity_requested > due:
        return received
    if identity_verified is None:
        return None
    if identity_requested <= identity_verified:
        return max(received, identity_verified)
    return received


def identity_request_delay(
    received: date, identity_requested: date, within_days: int = IDENTITY_REQUEST_WITHIN_DAYS
) -> int | None:
    """Days from receipt to the identity request when more than ``within_days`` (the delay
    the controller can justify), else ``None``. Judged only under ``restart_on_identity``,
    where a late request would otherwise buy the controller extra time."""
    if within_days < 1:
        raise ValueError("within_days must be >= 1")
    days = (identity_requested - received).days
    return days if days > within_days else None


class RefusalVerdict(StrEnum):
    """How a refusal's timing is judged (Art. 12(4))."""

    IN_TIME = "in_time"  # within one month of receipt
    AFTER_EXTENSION = "after_extension"  # later, but within a valid extension: contested
    LATE = "late"  # after one month with no valid extension, or after the extended date


def judge_refusal(refused_on: date, deadlines: RightsDeadlines) -> RefusalVerdict:
    """Art. 12(4): the subject must be told "without delay and at the latest within one
    month of receipt" why the controller does not act. Whether a valid Art. 12(3)
    extension also extends that month is contested (12(4) names one month and no
    extension; 12(3)'s extension is read by some as covering every answer, a refusal
    included): a refusal after the month but within a valid extension is
    ``AFTER_EXTENSION``, a lower-severity finding whose detail says why."""
    if refused_on <= deadlines.due:
        return RefusalVerdict.IN_TIME
    if deadlines.extended and refused_on <= deadlines.extended_due:
        return RefusalVerdict.AFTER_EXTENSION
    return RefusalVerdict.LATE
