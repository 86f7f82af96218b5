"""Alerts over HTTP: the outbox (``GET /v1/alerts``, dead letters, redelivery) and the live
stream ``GET /v1/alerts/stream`` (Server-Sent Events).

``AlertState`` is what ``create_app`` keeps in ``app.state.alerts``: the outbox of the data
directory (``DIR/alerts.sqlite``) and, once ``start()`` is called (the app's lifespan with
``background`` and ``run_alerts``), the scheduler and delivery threads. ``auditledger
serve`` does not start them here: its projections worker runs them
(``projections run --follow --alerts``), and this process only reads the outbox.

SSE: each event is ``id: <seq>`` (the outbox's monotonic sequence), ``event: alert``,
``data: <the alert JSON>``. A client that reconnects with ``Last-Event-ID: <seq>`` gets
every alert after it, so nothing is missed across a dropped connection; without it the
stream starts after the newest alert (``?after=0`` replays everything kept). Only alerts
of controllers the key may see are sent. The stream opens with ``retry: 1000`` and sends
a ``: keepalive`` comment every 15 s so proxies keep the connection open. sse-starlette
(``EventSourceResponse``) writes the frames, notices a client that went away, and closes
open streams when the server shuts down, so ``serve`` stops without waiting on them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from api.auth import require_role
from api.deps import CurrentKey, Reader
from api.errors import ApiError, not_found
from api.schemas import Error
from ledger.apikeys import ApiKey
from ledger.clock import Clock
from ledger.service import Ledger

router = APIRouter(tags=["alerts"], responses={401: {"model": Error}, 403: {"model": Error},
                                               404: {"model": Error}, 422: {"model": Error}})

POLL_S = 0.2
#: The largest seq a query may name: the outbox's integers are 64-bit signed.
MAX_SEQ = 2**63 - 1
KEEPALIVE_S = 15.0


class AlertState:
    """The alert outbox of a ledger and, when started, the service that fills and drains
    it. Without the projections package there are no alerts (``outbox`` is None)."""

    def __init__(self, ledger: Ledger, read_side: Any, clock: Clock) -> None:
        self.ledger, self.read_side, self.clock = ledger, read_side, clock
        self.outbox: Any = None
        self.service: Any = None
        if read_side is not None:
            from projections.alerts.outbox import Outbox
            from projections.alerts.scheduler import outbox_path

            self.outbox = Outbox(outbox_path(ledger.cfg.data_dir))

    def start(self) -> None:
        """Run the scheduler and the deliverer (Kafka sink when the ledger is on Kafka)."""
        if self.outbox is None or self.service is not None:
            return
        from projections.alerts.scheduler import AlertService, kafka_sink

        rs = self.read_side
        self.service = AlertService(
            rs.store, self.outbox, self.clock, kafka=kafka_sink(self.ledger.cfg),
            before_scan=None if rs.follow else rs.catch_up).start()

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def close(self) -> None:
        self.stop()
        if self.outbox is not None:
            self.outbox.close()

    def queue_length(self) -> int:
        """Alerts waiting for delivery (``/metrics``: ``auditledger_alert_queue_length``)."""
        return 0 if self.outbox is None else self.outbox.queue_length()


def alert_state(request: Request) -> AlertState:
    state: AlertState | None = getattr(request.app.state, "alerts", None)
    if state is None or state.outbox is None:
        raise ApiError(503, "alerts_unavailable", "alerts need the projections (read side)")
    return state


def visible(key: ApiKey, controller: str | None) -> list[str] | None:
    """The controllers a listing may show: None = all (admin without a filter)."""
    if controller is not None:
        if not key.may_see(controller):
            raise not_found(f"controller {controller}")
        return [controller]
    return None if key.role == "admin" else list(key.controllers)


STATES = ("pending", "emitted", "cancelled", "superseded", "dead", "undelivered")
State = Literal["pending", "emitted", "cancelled", "superseded", "dead", "undelivered"]


@router.get("/v1/alerts", summary="Alerts in the outbox, with their deliveries")
def list_alerts(
    request: Request, key: Reader,
    state: Annotated[State | None, Query(description="dead = a delivery was dead-lettered;"
                                         " undelivered = a delivery still pending;"
                                         " superseded = a threshold the case had passed"
                                         " when first seen, never sent.")] = None,
    controller: Annotated[str | None, Query(max_length=64)] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_SEQ, description=(
        "Only alerts with seq > after: an integer 0 to 2^63-1 (else 422 `invalid_request`)."
        ))] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    outbox = alert_state(request).outbox
    items = outbox.alerts(state, visible(key, controller), limit=limit, after_seq=after)
    return {"items": items}


@router.post("/v1/alerts/{alert_id}/redeliver", summary="Re-queue dead-lettered deliveries",
             status_code=200)
def redeliver(request: Request, key: CurrentKey, alert_id: str) -> dict[str, Any]:
    require_role(key, ("admin",))
    st = alert_state(request)
    if st.outbox.get(alert_id) is None:
        raise not_found(f"alert {alert_id}")
    n = st.outbox.redeliver(alert_id, st.clock.now())
    if st.service is not None:
        st.service.deliverer.wake.set()
    # else the deliverer runs in serve's projections worker: it polls the outbox at least
    # every second, so the re-queued deliveries go out within one.
    return {"id": alert_id, "requeued": n}


RETRY_MS = 1000  # the client's reconnect delay, sent first
SEP = "\n"  # sse-starlette's default is CRLF; the stream has always used LF


def _resume_after(last_event_id: str | None) -> int | None:
    """The seq a ``Last-Event-ID`` names, or None when it names none (ignored, as if
    absent): not digits, or past any seq the outbox can hold."""
    value = (last_event_id or "").strip()
    if not value.isdecimal() or not value.isascii() or int(value) > MAX_SEQ:
        return None
    return int(value)


def _sse(alert: dict[str, Any]) -> ServerSentEvent:
    data = orjson.dumps({k: v for k, v in alert.items() if k != "state"},
                        option=orjson.OPT_SORT_KEYS).decode()  # one line: no data: split
    return ServerSentEvent(data, id=str(alert["seq"]), event="alert", sep=SEP)


def _keepalive() -> ServerSentEvent:
    return ServerSentEvent(comment="keepalive", sep=SEP)


@router.get("/v1/alerts/stream", summary="Live alerts as Server-Sent Events",
            response_class=EventSourceResponse,
            responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}})
async def stream(
    request: Request, key: Reader,
    last_event_id: Annotated[str | None, Header(
        alias="Last-Event-ID", max_length=100,
        description="The seq of the last alert received: resume after it (a value that "
        "is not a seq is ignored, as if absent).")] = None,
    after: Annotated[int | None, Query(ge=0, le=MAX_SEQ, description=(
        "Start after this seq, 0 to 2^63-1 (default: the newest; Last-Event-ID wins)."))
                     ] = None,
    controller: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int | None, Query(ge=1, description="Close after this many alerts.")
                     ] = None,
    idle_timeout: Annotated[float | None, Query(gt=0, le=3600, description=(
        "Close after this many seconds without an alert."))] = None,
) -> EventSourceResponse:
    outbox = alert_state(request).outbox
    scope = visible(key, controller)
    resume = _resume_after(last_event_id)
    if resume is not None:
        start = resume
    elif after is not None:
        start = after
    else:
        start = await run_in_threadpool(outbox.last_seq)

    async def events() -> AsyncIterator[ServerSentEvent]:
        # sse-starlette ends this generator when the client goes away or the server shuts
        # down, and sends the keepalive comments; this only polls the outbox.
        last, sent = start, 0
        quiet = time.monotonic()
        yield ServerSentEvent(retry=RETRY_MS, sep=SEP)
        while True:
            rows = await run_in_threadpool(outbox.emitted_after, last, scope, 100)
            for a in rows:
                yield _sse(a)
                last, sent = a["seq"], sent + 1
                if limit is not None and sent >= limit:
                    return
            now = time.monotonic()
            if rows:
                quiet = now
                continue
            if idle_timeout is not None and now - quiet >= idle_timeout:
                return
            await asyncio.sleep(POLL_S)

    return EventSourceResponse(events(), ping=KEEPALIVE_S, sep=SEP,
                               ping_message_factory=_keepalive,
                               headers={"Cache-Control": "no-cache"})
