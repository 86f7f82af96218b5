"""Auditor reads: controllers, the event log, and the read models of the projections.

Every ``{controller}`` route resolves it through ``VisibleController``: a controller the
key may not see is the same 404 as one that does not exist.
"""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Response

from api.deps import (
    ClockDep,
    LedgerDep,
    Reader,
    ReadSideDep,
    VisibleController,
    controller_exists,
)
from api.errors import ApiError, not_found, raw_json
from api.readside import RETRY_AFTER_SECONDS, NotCaughtUp, ReadSide
from api.schemas import ControllerInfo, ControllerList, Error, EventPage, Page
from ledger.clock import MAX_YEAR, MIN_YEAR, parse_rfc3339
from ledger.encoding import EncodingError, b64, b64url, unb64url
from ledger.log.base import StoredEvent
from ledger.personal import case_states, event_view
from ledger.schemas import default_schemas
from ledger.service import Ledger

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error}, 401: {"model": Error}, 403: {"model": Error},
    404: {"model": Error}, 422: {"model": Error},
    503: {"model": Error, "description": (
        "`projections_catching_up`: the read models have not applied this controller's"
        " events yet (right after a start, during a replay); retry after `Retry-After`"
        " seconds. `projections_unavailable`: no read side in this deployment."),
        "headers": {"Retry-After": {"description": "Seconds to wait before retrying",
                                    "schema": {"type": "integer"}}}},
}
router = APIRouter(tags=["read"], responses=ERRORS)

SCAN_BUDGET = 20_000  # rows one request may examine for filters SQLite cannot apply


# -- cursors -------------------------------------------------------------------------------


def encode_cursor(index: int) -> str:
    """Opaque to clients; holds the last leaf index returned (per controller, so a cursor
    says nothing about other tenants' traffic)."""
    return b64url(f"i{index}".encode())


def decode_cursor(cursor: str) -> int:
    try:
        text = unb64url(cursor).decode("ascii")
        if not text.startswith("i") or not text[1:].isdigit():
            raise ValueError(text)
        return int(text[1:])
    except (EncodingError, ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API issued") from None


#: A time parameter is a valid time of the ledger (``ledger.clock``: the one definition
#: ingest and ``verify`` apply), or a date whose start (00:00 UTC) is one.
TIME_RULE = (
    "RFC 3339 with an offset (`2026-05-14T09:12:03Z`, `2026-05-14T11:12:03+02:00`) or a"
    " date `YYYY-MM-DD` (its start, 00:00 UTC): a valid time of the ledger, its UTC instant"
    f" in the years {MIN_YEAR}-{MAX_YEAR}, seconds 0-59, an offset of at most ±18:00."
    " Anything else (no offset, a leap second `:60`, an impossible date, an offset that"
    " moves it out of those years) answers 422 `invalid_request` naming the parameter."
)
CURSOR_RULE = (
    "Opaque: pass the `next_cursor` of the previous page unchanged. Any other value"
    " answers 400 `invalid_cursor`."
)
TYPE_RULE = (
    "An event type (`consent.given`) or a shell-style pattern over the catalogue"
    " (`consent.*`, `breach.?otified_authority`); repeat the parameter for several"
    " (at most 50). A pattern that matches no event type answers 422 `invalid_request`."
)


Limit = Annotated[int, Query(ge=1, le=1000, description=(
    "Items per page, 1-1000 (default 100); another value answers 422 `invalid_request`."))]
Cursor = Annotated[str | None, Query(max_length=100, description=CURSOR_RULE)]
Filter = Annotated[str | None, Query(max_length=200)]

#: What a time parameter must look like: years 1900-9899, months, days up to 31, hours,
#: minutes and seconds (no leap second), offsets up to ±18:00. The calendar checks that no
#: pattern can make (30 February, an offset that moves the instant out of the years)
#: follow in ``parse_time``.
TIME_PATTERN = (
    r"^(19[0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?"
    r"(Z|[+-](0[0-9]|1[0-7]):[0-5][0-9]|[+-]18:00))?$"
)


def time_query(what: str, alias: str | None = None) -> Any:
    """The ``Query`` of a time parameter, its rules in the OpenAPI document."""
    return Query(alias=alias, max_length=40, pattern=TIME_PATTERN,
                 description=f"{what}. {TIME_RULE}",
                 examples=["2026-05-14T09:12:03Z", "2026-05-14"])


def parse_time(value: str | None, name: str) -> datetime | None:
    """A time query parameter as an aware UTC datetime (``TIME_RULE``), or 422."""
    if value is None:
        return None
    text = value + "T00:00:00Z" if len(value) == 10 else value  # a date: its start, UTC
    try:
        return parse_rfc3339(text).astimezone(UTC)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"{name}: {value!r} is not a valid time"
                       f" ({exc})") from None


def expand_types(patterns: list[str]) -> list[str]:
    known = default_schemas().types
    out = sorted({t for p in patterns for t in known if fnmatch.fnmatchcase(t, p)})
    if not out:
        raise ApiError(422, "invalid_request", f"type: no event type matches {patterns}")
    return out


# -- controllers ---------------------------------------------------------------------------


def controller_info(ledger: Ledger, controller: str) -> dict[str, Any]:
    ctl = ledger.registry.controllers.get(controller)
    data = ctl.data if ctl else {}
    cp = ledger.log.latest_checkpoint(controller)
    return {
        "controller": controller,
        "name": data.get("name"),
        "country": data.get("country"),
        "timezone": data.get("timezone"),
        "size": ledger.log.size(controller),
        "checkpoint_size": cp.size if cp else 0,
    }


@router.get("/v1/controllers", response_model=ControllerList,
            summary="Controllers the caller may see")
async def list_controllers(key: Reader, ledger: LedgerDep) -> dict[str, Any]:
    ids = ledger.log.controllers() if key.role == "admin" else sorted(
        c for c in key.controllers if controller_exists(ledger, c)
    )
    return {"items": [controller_info(ledger, c) for c in ids]}


@router.get("/v1/controllers/{controller}", response_model=ControllerInfo,
            summary="One controller: registration and log size")
async def get_controller(controller: VisibleController, ledger: LedgerDep) -> dict[str, Any]:
    return controller_info(ledger, controller)


# -- the event log -------------------------------------------------------------------------


def _matches(ev: StoredEvent, types: set[str] | None, producer: str | None,
             subject: str | None, start: datetime | None, end: datetime | None) -> bool:
    if types is not None and ev.type not in types:
        return False
    if producer is not None and ev.producer != producer:
        return False
    if subject is not None and orjson.loads(ev.body).get("subject") != subject:
        return False
    if start is not None or end is not None:
        try:
            at = parse_rfc3339(ev.occurred_at)
        except ValueError:  # an instant no calendar holds lies in no period
            return False
        if (start is not None and at < start) or (end is not None and at >= end):
            return False
    return True


def record_bytes(ev: StoredEvent) -> bytes:
    """The stored envelope plus the ledger's fields, spliced into the canonical bytes (no
    parse and re-encode per event)."""
    return ev.body[:-1] + b',"index":%d,"leaf_hash":"%s","received_at":%s}' % (
        ev.index, b64(ev.leaf_hash).encode(), orjson.dumps(ev.received_at))


def page_events(
    ledger: Ledger, controller: str, after: int | None, types: list[str] | None,
    producer: str | None, subject: str | None, start: datetime | None,
    end: datetime | None, limit: int,
) -> tuple[list[bytes], int | None]:
    """Serialised records and the index to resume after (None at the end of the log).

    Walks the controller's leaf indexes (dense, in log order) with point lookups, so a page
    costs the same at index 10 and at index 10,000,000.
    """
    size = ledger.log.size(controller)
    i = 0 if after is None else after + 1
    if after is not None and not 0 <= after < max(size, 1):
        raise ApiError(400, "invalid_cursor", "cursor is not one this API issued")
    wanted = set(types) if types is not None else None
    filtered = any(v is not None for v in (wanted, producer, subject, start, end))
    out: list[bytes] = []
    scanned = 0
    while i < size:
        if len(out) == limit or (filtered and scanned >= SCAN_BUDGET):
            return out, i - 1  # the cursor moves on even when filters left the page short
        ev = ledger.log.event_at(controller, i)
        if ev is None:  # pragma: no cover - indexes are dense below size
            break
        scanned += 1
        if _matches(ev, wanted, producer, subject, start, end):
            out.append(record_bytes(ev))
        i += 1
    return out, None


@router.get(
    "/v1/controllers/{controller}/events",
    response_model=EventPage,
    summary="The controller's events in log order, filtered, cursor-paginated",
    description=(
        "Filters combine with AND. `type` may repeat and may be a pattern (`consent.*`). "
        "`from`/`to` bound `occurred_at` (`from` inclusive, `to` exclusive; RFC 3339 or "
        "YYYY-MM-DD). A page may hold fewer than `limit` items when filters skip many "
        f"events (one request examines at most {SCAN_BUDGET} events); keep following "
        "`next_cursor` until it is null."
    ),
)
async def list_events(
    controller: VisibleController,
    ledger: LedgerDep,
    type: Annotated[list[str] | None, Query(max_length=50, description=TYPE_RULE)] = None,
    producer: Annotated[str | None, Query(max_length=200)] = None,
    subject: Annotated[str | None, Query(max_length=200)] = None,
    from_: Annotated[str | None, time_query(
        "Events with `occurred_at` at or after this instant", "from")] = None,
    to: Annotated[str | None, time_query("Events with `occurred_at` before this instant")
                  ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    types = expand_types(type) if type else None
    after = decode_cursor(cursor) if cursor else None
    rows, last = page_events(
        ledger, controller, after, types, producer, subject,
        parse_time(from_, "from"), parse_time(to, "to"), limit,
    )
    nxt = orjson.dumps(encode_cursor(last) if last is not None else None)
    body = b'{"items":[' + b",".join(rows) + b'],"next_cursor":' + nxt + b"}"
    return raw_json(body)


@router.get(
    "/v1/controllers/{controller}/events/{event_id}/sealed",
    response_model=dict[str, Any],
    summary="The personal data an event keeps sealed: opened for an admin only",
    description=(
        "`state`: `absent` (the event keeps no personal data), `sealed` (kept; `fields`, "
        "the plaintext, only for an admin key — an auditor is told that the data exist, "
        "not what they say), `erased` (the subject's keys were destroyed: `erased_at`, "
        "`fields` for nobody), `unreadable` (the key store has no such key or it does not "
        "open). Decrypted when asked; no read model holds the plaintext."
    ),
)
async def get_sealed(
    controller: VisibleController, key: Reader, ledger: LedgerDep,
    event_id: Annotated[str, Path(max_length=128)],
) -> dict[str, Any]:
    ev = ledger.log.lookup(controller, [event_id]).get(event_id)
    if ev is None:
        raise not_found(f"event {event_id}")
    env = ev.envelope()
    return {"event_id": event_id, "type": ev.type, "subject": env.get("subject"),
            **event_view(ledger.keys, env, key)}


# -- read models (projections) ---------------------------------------------------------------


def catching_up(exc: NotCaughtUp) -> ApiError:
    """503 ``projections_catching_up`` with ``Retry-After``: the read side has not applied
    the events the answer needs yet (right after a start, or while it replays the log)."""
    return ApiError(503, "projections_catching_up", str(exc),
                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def read_model(read_side: ReadSide | None, name: str, controller: str, **kw: Any) -> Any:
    """``queries.<name>`` through the read side. A controller the read models do not
    know yet while they are behind its events answers 503 ``projections_catching_up``
    (not 404: the ledger knows it); once they have applied them, 404."""
    if read_side is None:
        raise ApiError(503, "projections_unavailable",
                       "the read models are not available in this deployment")
    try:
        return read_side.call(name, controller, **kw)
    except KeyError:
        try:
            read_side.ensure_caught_up(controller)
        except NotCaughtUp as exc:
            raise catching_up(exc) from None
        try:  # caught up meanwhile: ask again
            return read_side.call(name, controller, **kw)
        except KeyError:
            raise not_found(f"controller {controller}") from None


def paged(items: list[Any], limit: int, cursor: str | None) -> dict[str, Any]:
    """Offset pagination over a read model's list (they are small: one row per case)."""
    start = decode_cursor(cursor) if cursor else 0
    page = items[start : start + limit]
    more = start + limit < len(items)
    return {"items": page, "next_cursor": encode_cursor(start + limit) if more else None}




@router.get("/v1/controllers/{controller}/consents/{subject}", response_model=dict[str, Any],
            summary="Consent state of one subject (pseudonym) for every purpose")
def get_consents(
    controller: VisibleController, subject: Annotated[str, Path(max_length=200)],
    read_side: ReadSideDep, clock: ClockDep,
    as_of: Annotated[str | None, time_query(
        "The instant the state is asked for (default: now)")] = None,
) -> Any:
    at = parse_time(as_of, "as_of")
    return read_model(read_side, "consents", controller, subject=subject, as_of=at,
                      clock=clock)


@router.get("/v1/controllers/{controller}/ropa", response_model=dict[str, Any],
            summary="Record of processing activities (Art. 30)")
def get_ropa(controller: VisibleController, read_side: ReadSideDep, clock: ClockDep,
             include_retired: bool = True) -> Any:
    return read_model(read_side, "ropa", controller, clock=clock,
                      include_retired=include_retired)


@router.get("/v1/controllers/{controller}/recipients", response_model=Page,
            summary="Recipients register")
def get_recipients(controller: VisibleController, read_side: ReadSideDep,
                   status: Filter = None, limit: Limit = 100, cursor: Cursor = None) -> Any:
    items = read_model(read_side, "recipients", controller, status=status)
    return paged(items, limit, cursor)


@router.get("/v1/controllers/{controller}/transfers", response_model=Page,
            summary="Third-country transfers with the verdict of the law on their day")
def get_transfers(controller: VisibleController, read_side: ReadSideDep,
                  valid: bool | None = None, recipient_id: Filter = None,
                  limit: Limit = 100, cursor: Cursor = None) -> Any:
    items = read_model(read_side, "transfers", controller, valid=valid,
                       recipient_id=recipient_id)
    return paged(items, limit, cursor)


@router.get("/v1/controllers/{controller}/rights-requests", response_model=Page,
            summary="Data-subject rights requests with their deadlines")
def get_rights_requests(controller: VisibleController, read_side: ReadSideDep,
                        ledger: LedgerDep, clock: ClockDep, status: Filter = None,
                        subject: Filter = None, limit: Limit = 100,
                        cursor: Cursor = None) -> Any:
    items = read_model(read_side, "rights_requests", controller, status=status,
                       subject=subject, clock=clock)
    page = paged(items, limit, cursor)
    page["items"] = case_states(ledger.log, ledger.keys, controller, page["items"])
    return page


@router.get("/v1/controllers/{controller}/breaches", response_model=Page,
            summary="Breach register (Art. 33(5))")
def get_breaches(controller: VisibleController, read_side: ReadSideDep, ledger: LedgerDep,
                 clock: ClockDep, status: Filter = None, limit: Limit = 100,
                 cursor: Cursor = None) -> Any:
    items = read_model(read_side, "breaches", controller, status=status, clock=clock)
    page = paged(items, limit, cursor)
    page["items"] = case_states(ledger.log, ledger.keys, controller, page["items"])
    return page


@router.get("/v1/controllers/{controller}/findings", response_model=Page,
            summary="Findings: named breaches of a rule with their evidence events")
def get_findings(controller: VisibleController, read_side: ReadSideDep, clock: ClockDep,
                 code: Filter = None, severity: Filter = None, limit: Limit = 100,
                 cursor: Cursor = None) -> Any:
    items = read_model(read_side, "findings", controller, code=code, severity=severity,
                       clock=clock)
    return paged(items, limit, cursor)


@router.get("/v1/controllers/{controller}/deadlines", response_model=Page,
            summary="Everything due, soonest first")
def get_deadlines(controller: VisibleController, read_side: ReadSideDep, clock: ClockDep,
                  limit: Limit = 100, cursor: Cursor = None) -> Any:
    items = read_model(read_side, "deadlines", controller, clock=clock)
    return paged(items, limit, cursor)
