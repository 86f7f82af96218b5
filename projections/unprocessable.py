"""Events the read side cannot interpret: found before they are applied, kept as findings.

Why: the log of record is evidence and is never rewritten, and it may hold values that the
ingest of its day let through — an ``occurred_at`` of ``0001-01-01T00:00:00+23:59`` (its
UTC instant lies before year 1), a leap second ``23:59:60``, year 0 — in the envelope or
in any time or date field of ``data``. One such event must not stop the projections for
every tenant. So before an event is applied, the times it carries are interpreted
(``check``); an event that fails is not applied at all (no half-applied facts) and an
``unprocessable_event`` finding of its controller records it instead (severity high:
the facts it states are missing from that controller's read models, its deadlines
included), with the field, the error and the event id as evidence.

What "interpretable" means here (``instant``, ``day``): the text parses as RFC 3339 with
an offset (or YYYY-MM-DD for a date), and the instant in UTC (the date) lies in years
``EARLIEST_YEAR``–``LATEST_YEAR``. The year before and after are kept out because every
rule adds to or takes from these times (72 hours, three months, the end of a local day,
an alert seven days before) and the results must stay representable; no real fact of a
GDPR ledger lies within a year of the calendar's ends.

This is deliberately wider than the ledger's one definition of a valid time
(``ledger.clock``: UTC years 1900-9899, seconds 0-59, offsets up to ±18:00), which ingest,
``verify`` and the API's time parameters apply: the read side must still interpret what an
older ingest let in, and only refuses what it cannot compute with.

The fields checked are the schemas' own: every ``data`` property of an event type whose
schema says ``"format": "date-time"`` or ``"date"`` (``TIME_FIELDS``, read from
``schemas/events``), so a new time field is checked without a change here. ``ext`` is the
producers' own and never read by a rule.

The same functions guard query time (``projections.queries``): a stored value that cannot
be interpreted makes that one case ``unprocessable`` and names it, never the whole answer.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import orjson

from ledger import paths

CODE = "unprocessable_event"
SEVERITY = "high"
#: The interpretable years, in UTC (see the module's docstring).
EARLIEST_YEAR = 2
LATEST_YEAR = 9998


class Unprocessable(ValueError):
    """A value of an event the read side cannot interpret: ``field`` names it
    (``occurred_at``, ``data.aware_at``, ``envelope``), ``error`` says why."""

    def __init__(self, field: str, error: str) -> None:
        super().__init__(f"{field}: {error}")
        self.field, self.error = field, error


def _in_range(year: int, value: str) -> None:
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        raise ValueError(f"{value!r} lies outside the years {EARLIEST_YEAR}-{LATEST_YEAR}"
                         " (UTC) the read side interprets")


def instant(value: Any) -> datetime:
    """``value`` (RFC 3339 text, an offset required) as an aware UTC datetime, or
    ``ValueError`` naming what is wrong: not text, no offset, not a calendar instant
    (a leap second ``:60``, year 0, 31 February), or outside the interpretable years."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not an RFC 3339 string")
    try:  # Python 3.11+ reads a trailing "Z"; RFC 3339 also allows "z"
        dt = datetime.fromisoformat(value if value[-1:] != "z" else value[:-1] + "Z")
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an RFC 3339 instant ({exc})") from None
    if dt.tzinfo is None:
        raise ValueError(f"{value!r} has no offset")
    try:
        dt = dt.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r}: its UTC instant leaves the calendar") from None
    _in_range(dt.year, value)
    return dt


def day(value: Any) -> date:
    """``value`` (YYYY-MM-DD) as a date, or ``ValueError`` (see ``instant``)."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a YYYY-MM-DD string")
    try:
        d = date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a date YYYY-MM-DD ({exc})") from None
    _in_range(d.year, value)
    return d


def _formats(node: Any, defs: dict[str, Any], path: tuple[str, ...],
             out: list[tuple[tuple[str, ...], str]]) -> None:
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        _formats(defs.get(ref.rsplit("/", 1)[1]), defs, path, out)
    if node.get("format") in ("date-time", "date") and path:
        out.append((path, node["format"]))
    for name, sub in (node.get("properties") or {}).items():
        if name != "ext":
            _formats(sub, defs, (*path, name), out)


@cache
def time_fields() -> dict[str, tuple[tuple[tuple[str, ...], str], ...]]:
    """``{event type: ((path in data, "date-time" | "date"), …)}`` from the schemas."""
    out: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {}
    for path in sorted((paths.SCHEMAS / "events").glob("*.json")):
        schema = orjson.loads(path.read_bytes())
        found: list[tuple[tuple[str, ...], str]] = []
        _formats(schema, schema.get("$defs") or {}, (), found)
        if found:
            out[path.name.removesuffix(".json")] = tuple(found)
    return out


_PARSE: dict[str, Callable[[Any], Any]] = {"date-time": instant, "date": day}


_FIELDS = time_fields()
_fromisoformat = datetime.fromisoformat


def check(type_: str, occurred_at: Any, data: Any) -> None:
    """Raise ``Unprocessable`` for the first value of an event the read side cannot
    interpret: ``occurred_at``, then each time/date field of ``data`` that is present.

    Runs for every event of a replay: a UTC ``occurred_at`` (``…Z``, what producers
    write) costs one ``fromisoformat``; anything else, or a failure, takes ``instant``."""
    try:
        if occurred_at[-1] != "Z" or not (
                EARLIEST_YEAR <= _fromisoformat(occurred_at).year <= LATEST_YEAR):
            instant(occurred_at)
    except (ValueError, TypeError, IndexError):
        try:
            instant(occurred_at)
        except ValueError as exc:
            raise Unprocessable("occurred_at", str(exc)) from None
    fields = _FIELDS.get(type_)
    if not fields:
        return
    if not isinstance(data, dict):
        raise Unprocessable("data", "not an object")
    for path, fmt in fields:
        value: Any = data
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        if value is None:
            continue
        try:
            _PARSE[fmt](value)
        except ValueError as exc:
            raise Unprocessable("data." + ".".join(path), str(exc)) from None


def event_id_of(body: bytes | str) -> str | None:
    """The event id of a stored envelope, if one can be read at all (evidence)."""
    try:
        env = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    eid = env.get("event_id") if isinstance(env, dict) else None
    return eid if isinstance(eid, str) else None


def finding_doc(type_: str, event_id: str | None, exc: BaseException) -> dict[str, Any]:
    """The stored document of an ``unprocessable_event`` finding (``code`` and
    ``controller`` are columns). Nothing in it depends on the source's positions (a
    Kafka-fed store keys rows by offset), so every source and every rebuild writes the
    same bytes."""
    if isinstance(exc, Unprocessable):
        what = f"{exc.field}: {exc.error}"
    else:  # a handler failed on a value no check foresaw
        what = f"{type(exc).__name__}: {exc}"
    name = event_id or "without a readable event id"
    return {
        "severity": SEVERITY,
        "detail": f"{type_} event {name} cannot be interpreted and is left out of the"
                  f" read models (the log keeps it): {what}",
        "evidence": [event_id] if event_id else [],
    }


#: What a stored value that cannot be interpreted raises at query time (a bad time, a
#: date past the calendar's end after adding a deadline, an unknown zone, a field of the
#: wrong shape in a store written before the checks above existed).
#: The projection catches the same around each event's handler: errors of its values, never
#: those of the store (a database that cannot be read fails the batch, as before).
UNREADABLE: tuple[type[Exception], ...] = (ValueError, OverflowError, TypeError, KeyError,
                                           IndexError, AttributeError)


def case_finding(controller: str, what: str, exc: BaseException, evidence: list[str],
                 **ids: str) -> dict[str, Any]:
    """The ``unprocessable_event`` finding of one case (a rights request, a breach) whose
    stored facts cannot be interpreted at query time: its deadlines are not computed, and
    this says so instead of failing the whole answer."""
    return {"code": CODE, "controller": controller, "severity": SEVERITY,
            "detail": f"{what}: a stored value cannot be interpreted, so its deadlines and"
                      f" state are not computed ({type(exc).__name__}: {exc})",
            "evidence": evidence, **ids}
