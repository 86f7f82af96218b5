"""The FastAPI application factory.

``create_app`` takes everything it serves by constructor injection — the ledger, the API
key store, the clock, the read side's query module — so tests build an app around a
fixture ledger and the CLI builds one around a data directory.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api import errors, web
from api.admission import Admission, ShedWhenFull
from api.auth import Authenticator
from api.metrics import Metrics
from api.readside import open_read_side
from api.routes import (
    alerts,
    catalogue,
    evidence,
    ingest,
    ops,
    proofs,
    read,
    report,
    subjects,
    tlog,
    webhooks,
)
from ledger.apikeys import ApiKeyStore
from ledger.clock import Clock
from ledger.schemas import default_schemas
from ledger.service import Ledger
from ledger.witness import Witnessing

CHECKPOINT_TICK_SECONDS = 0.2
PROJECTION_TICK_SECONDS = 0.5
WITNESS_TICK_SECONDS = 0.5


class Ticker:
    """Calls ``fn`` every ``interval`` seconds on a daemon thread until stopped."""

    def __init__(self, fn: Callable[[], Any], interval: float, name: str) -> None:
        self.fn, self.interval = fn, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.errors = 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.fn()
            except Exception:  # keep ticking; a stuck checkpoint must not stop the API
                self.errors += 1

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class CountRequests:
    """Pure ASGI middleware counting requests by route template and status (cheaper than
    ``@app.middleware("http")``, which wraps every response body in a stream)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            self.metrics.request(getattr(route, "path", "unmatched"), scope["method"],
                                 status[0])


def _envelope_schema() -> dict[str, Any]:
    raw = dict(default_schemas().envelope_schema)
    for key in ("$schema", "$id"):
        raw.pop(key, None)
    return raw


def create_app(
    ledger: Ledger,
    *,
    keys: ApiKeyStore | None = None,
    clock: Clock | None = None,
    read_side: Any = "auto",
    max_body_bytes: int = ingest.MAX_BODY_BYTES,
    background: bool = False,
    run_projections: bool = True,
    run_alerts: bool = True,
    on_shutdown: Callable[[], Any] | None = None,
    tasks: list[tuple[Callable[[], Any], float]] | None = None,
) -> FastAPI:
    """An app serving ``ledger``.

    With ``background``, the app's lifespan runs the checkpoint timer (``checkpoint_due``
    every 200 ms, so a checkpoint is signed at least every second while events arrive),
    the witness sender when the config names witnesses (``ledger.witness.Witnessing``) and
    any extra ``tasks`` (``(fn, interval)``); the projection runner follows the log on
    its own thread unless ``run_projections`` is false (``serve`` runs it as a separate
    process, off this one's GIL). The alert scheduler and deliverer run in this process
    unless ``run_alerts`` is false (``serve`` runs them in the projections worker,
    ``projections run --follow --alerts``: docs/alerts.md); the outbox routes and the SSE
    stream read the outbox either way. ``read_side="auto"`` opens the projections' store in the data
    directory when the projections package is installed; pass ``None`` to serve without.
    """
    ingest_lock = threading.Lock()
    clock = clock or ledger.clock
    if read_side == "auto":
        read_side = open_read_side(ledger, clock, follow=background)
    # Cosigning runs on its own ticker: a slow or absent witness never holds up ingest
    # or the checkpoint timer (docs/witnesses.md).
    witnessing = Witnessing(ledger.log, ledger.cfg.witnesses) if (
        background and ledger.cfg.witnesses) else None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        tickers: list[Ticker] = []
        if background:
            def checkpoint() -> None:
                with ingest_lock:
                    ledger.log.checkpoint_due()

            tickers.append(Ticker(checkpoint, CHECKPOINT_TICK_SECONDS, "checkpoints").start())
            if read_side is not None and read_side.follow and run_projections:
                tickers.append(Ticker(read_side.step, PROJECTION_TICK_SECONDS,
                                      "projections").start())
            if witnessing is not None:
                tickers.append(Ticker(witnessing.step, WITNESS_TICK_SECONDS,
                                      "witnesses").start())
            for fn, interval in tasks or []:
                tickers.append(Ticker(fn, interval, getattr(fn, "__name__", "task")).start())
            if run_alerts:
                app.state.alerts.start()  # scheduler + delivery (docs/alerts.md)
        try:
            yield
        finally:
            app.state.alerts.stop()
            for t in tickers:
                t.stop()
            if witnessing is not None:
                witnessing.close()
            if on_shutdown is not None:
                # uvicorn re-raises SIGTERM/SIGINT after shutdown, so code after
                # uvicorn.run() may never run: closing belongs here.
                on_shutdown()

    app = FastAPI(
        title="auditledger",
        version="1",
        summary="Event-sourced GDPR compliance audit ledger",
        description="Signed, append-only evidence of GDPR accountability, with RFC 9162 "
        "proofs and offline-verifiable evidence bundles. See docs/api.md.",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc are api.web.apidocs: assets served locally
        redoc_url=None,
    )
    app.state.ledger = ledger
    app.state.clock = clock
    app.state.auth = Authenticator(keys or ApiKeyStore(ledger.cfg.auth_db))
    app.state.metrics = Metrics()
    app.state.read_side = read_side
    app.state.max_body_bytes = max_body_bytes
    app.state.ingest_lock = ingest_lock
    app.state.witnessing = witnessing
    app.state.group_commit = ingest.GroupCommit(ledger, ingest_lock)
    app.state.admission = Admission(ledger.cfg.ingest_max_pending_events,
                                    ledger.cfg.ingest_retry_after_seconds)
    app.state.metrics.watch_admission(app.state.admission)
    app.state.alerts = alerts.AlertState(ledger, read_side, clock)
    app.state.alert_queue_length = app.state.alerts.queue_length

    errors.install(app)
    for module in (ingest, read, proofs, tlog, evidence, report, ops, alerts, webhooks,
                   subjects, catalogue):
        app.include_router(module.router)

    ingest_route = next(r for r in ingest.router.routes
                        if getattr(r, "path", None) == ShedWhenFull.PATH)
    # Inside the security headers and the request counter: a refusal carries the one and
    # is counted by the other.
    app.add_middleware(ShedWhenFull, admission=app.state.admission, route=ingest_route)
    web.install(app)  # auditor pages, /docs, /redoc, /static (docs/web.md)

    app.add_middleware(CountRequests, metrics=app.state.metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, summary=app.summary,
                              description=app.description, routes=app.routes)
            doc.setdefault("components", {}).setdefault("schemas", {})["Envelope"] = (
                _envelope_schema()
            )
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
