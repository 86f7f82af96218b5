"""Liveness, readiness and Prometheus metrics. No authentication, no tenant names."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import LedgerDep, MetricsDep, ReadSideDep
from api.schemas import Health, Ready

router = APIRouter(tags=["operations"])


def projection_lag(read_side: Any) -> tuple[bool, int | None, str | None]:
    """(reachable, lag, detail) of the read side; (True, None, ...) when it is absent."""
    if read_side is None:
        return True, None, "projections not installed"
    try:
        return True, read_side.lag(), None
    except Exception as exc:  # reachable is the question: any failure means "no"
        return False, None, f"{type(exc).__name__}: {exc}"


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, summary="Log and projections reachable",
            responses={503: {"model": Ready}})
def readyz(ledger: LedgerDep, read_side: ReadSideDep, response: Response) -> dict[str, Any]:
    try:
        ledger.log.last_seq()
        log = {"ok": True}
    except Exception as exc:
        log = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
    ok, lag, detail = projection_lag(read_side)
    ready = log["ok"] and ok
    response.status_code = 200 if ready else 503
    return {"status": "ready" if ready else "not_ready", "log": log,
            "projections": {"ok": ok, "lag": lag, "detail": detail}}


@router.get("/metrics", summary="Prometheus metrics (text format 0.0.4)",
            response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics(request: Request, ledger: LedgerDep, read_side: ReadSideDep,
            counters: MetricsDep) -> Response:
    try:
        sizes = {"all": sum(ledger.log.size(c) for c in ledger.log.controllers())}
    except Exception:
        sizes = {}
    _, lag, _ = projection_lag(read_side)
    alerts = getattr(request.app.state, "alert_queue_length", lambda: 0)()
    text = counters.render(sizes, lag, alerts)
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")
