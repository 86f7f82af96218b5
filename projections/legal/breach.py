"""Personal-data breach rules (GDPR Arts. 33–34; EDPB Guidelines 9/2022 and 01/2021).

The authority must be notified within 72 **elapsed** hours of awareness: computed in UTC,
so weekends, public holidays and daylight-saving changes never move it. Local time is only
a rendering for people.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from projections.legal.rights import zone

#: Art. 33(1).
AUTHORITY_WINDOW = timedelta(hours=72)
#: Longest detection-to-awareness gap tolerated before it is a finding. EDPB Guidelines
#: 9/2022 (when a controller becomes "aware"): once told of a potential breach, the
#: controller may only take a *short* investigation to establish whether a breach
#: occurred; we take the Art. 33(1) window itself as the outer bound of "short".
AWARENESS_WINDOW = timedelta(hours=72)


class Risk(StrEnum):
    UNLIKELY = "unlikely"  # no notification; documented in the register (Art. 33(5))
    RISK = "risk"  # notify the authority
    HIGH = "high"  # notify the authority and communicate to the subjects (Art. 34)


class Exemption(StrEnum):
    """Art. 34(3) grounds for not communicating a high-risk breach to the subjects."""

    UNINTELLIGIBLE = "a"  # e.g. encrypted, key safe
    MITIGATED = "b"  # later measures make the high risk unlikely
    DISPROPORTIONATE = "c"  # public communication instead


class BreachState(StrEnum):
    OPEN = "open"
    NOT_REQUIRED = "not_required"
    NOTIFIED_ON_TIME = "notified_on_time"
    NOTIFIED_LATE_WITH_REASONS = "notified_late_with_reasons"
    NOTIFIED_LATE_WITHOUT_REASONS = "notified_late_without_reasons"
    OVERDUE = "overdue"


def _aware(dt: datetime, name: str) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return dt.astimezone(UTC)


def awareness(
    aware_at: datetime | None, processor_notified_at: datetime | None
) -> datetime | None:
    """When the controller became aware: the earlier of its own ``breach.aware`` and its
    processor's notice (Art. 33(2); EDPB Guidelines 9/2022: the controller is
    aware once the processor has informed it). ``None`` when neither is recorded."""
    known = [_aware(t, "awareness") for t in (aware_at, processor_notified_at) if t is not None]
    return min(known) if known else None


def awareness_delay(detected_at: datetime, until: datetime) -> timedelta | None:
    """The detection-to-awareness gap when it exceeds ``AWARENESS_WINDOW``, else ``None``.

    ``until`` is when awareness was recorded, or — while none is — the moment judged (the
    breach's closing, or now). A gap that grew past the window stays a finding after the
    awareness is finally recorded: it was complete before then.
    """
    gap = _aware(until, "until") - _aware(detected_at, "detected_at")
    return gap if gap > AWARENESS_WINDOW else None


def authority_due(aware_at: datetime) -> datetime:
    """``aware_at`` + 72 elapsed hours, in UTC. Requires an aware datetime."""
    return _aware(aware_at, "aware_at") + AUTHORITY_WINDOW


def to_local(at: datetime, tz: str) -> datetime:
    """The same instant as a wall-clock time in ``tz`` (IANA name)."""
    return _aware(at, "at").astimezone(zone(tz))


def format_local(at: datetime, tz: str) -> str:
    """RFC 3339 with the zone's offset on that instant, millisecond precision."""
    return to_local(at, tz).isoformat(timespec="milliseconds")


def _parse_enum(cls, value, name):  # type: ignore[no-untyped-def]
    if value is None or isinstance(value, cls):
        return value
    if cls is Exemption and isinstance(value, str):
        # accept "a", "34(3)(a)", "art34_3_a": the ground is the trailing letter
        value = value.strip().lower().rstrip(")")[-1:]
    try:
        return cls(value)
    except ValueError as exc:
        raise ValueError(f"unknown {name}: {value!r}") from exc


def breach_state(
    aware_at: datetime,
    risk: Risk | str | None,
    notified_at: datetime | None,
    delay_reasons: bool,
    now: datetime,
) -> BreachState:
    """The Art. 33 state of a breach from its facts.

    - assessed ``unlikely``: ``not_required``, notified or not — a notification of such a
      breach is voluntary, so it is never late (its time is still shown as ``notified_at``);
    - otherwise a notification decides the state: on time when
      ``notified_at <= aware_at + 72 h`` (the deadline instant itself is in time), else late
      with or without reasons for the delay (Art. 33(1) second sentence);
    - no notification (unassessed breaches are presumed notifiable): ``overdue`` once
      ``now`` is past the deadline, else ``open``.
    """
    due = authority_due(aware_at)
    risk = _parse_enum(Risk, risk, "risk")
    if risk is Risk.UNLIKELY:
        return BreachState.NOT_REQUIRED
    if notified_at is not None:
        if _aware(notified_at, "notified_at") <= due:
            return BreachState.NOTIFIED_ON_TIME
        if delay_reasons:
            return BreachState.NOTIFIED_LATE_WITH_REASONS
        return BreachState.NOTIFIED_LATE_WITHOUT_REASONS
    if _aware(now, "now") > due:
        return BreachState.OVERDUE
    return BreachState.OPEN


def obligations(
    risk: Risk | str | None, exemption: Exemption | str | None = None
) -> dict[str, bool]:
    """``{"record", "notify_authority", "communicate_subjects"}`` for the read model.

    - ``record``: always (Art. 33(5): every breach belongs in the register);
    - ``notify_authority``: unless assessed ``unlikely`` (unassessed = presumed notifiable);
    - ``communicate_subjects``: risk ``high`` and no Art. 34(3) exemption recorded. Under
      exemption (c) the individual communication is replaced by a public one: see
      ``public_communication_required``.
    """
    risk = _parse_enum(Risk, risk, "risk")
    exemption = _parse_enum(Exemption, exemption, "exemption")
    return {
        "record": True,
        "notify_authority": risk is not Risk.UNLIKELY,
        "communicate_subjects": risk is Risk.HIGH and exemption is None,
    }


def public_communication_required(
    risk: Risk | str | None, exemption: Exemption | str | None
) -> bool:
    """Art. 34(3)(c): a high-risk breach exempted for disproportionate effort."""
    return (
        _parse_enum(Risk, risk, "risk") is Risk.HIGH
        and _parse_enum(Exemption, exemption, "exemption") is Exemption.DISPROPORTIONATE
    )


def public_communication_missing(
    risk: Risk | str | None,
    exemption: Exemption | str | None,
    public_communication: bool,
    subjects_communicated: bool,
    closed: bool,
) -> bool:
    """Art. 34(3)(c): closed under the disproportionate-effort exemption with no public
    communication (nor, in the end, an individual one, which informs the subjects at least
    as effectively)."""
    return (closed and public_communication_required(risk, exemption)
            and not public_communication and not subjects_communicated)


def subjects_not_communicated(
    risk: Risk | str | None,
    exemption: Exemption | str | None,
    subjects_communicated: bool,
    closed: bool,
) -> bool:
    """Art. 34(1): a high-risk breach closed with neither a communication to the subjects
    nor an Art. 34(3) exemption recorded."""
    return closed and obligations(risk, exemption)["communicate_subjects"] \
        and not subjects_communicated
