"""Liveness, readiness and Prometheus metrics. No authentication, no tenant names."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.deps import LedgerDep, MetricsDep, ReadSideDep
from api.schemas import Health, Ready

router = APIRouter(tags=["operations"])


def projection_state(read_side: Any) -> tuple[bool, dict[str, Any]]:
    """(reachable, {lag, caught_up, last_error, detail}) of the read side, from
    ``ReadSide.status()`` (which never raises: an unreadable log or store is ``lag``
    None with its ``last_error``)."""
    if read_side is None:
        return True, {"lag": None, "detail": "projections not installed"}
    st = read_side.status()
    out = {"lag": st["lag"], "caught_up": st["caught_up"], "last_error": st["last_error"]}
    if st["lag"] is None:
        out["detail"] = (st["last_error"] or {}).get("error")
        return False, out
    if (st["worker"] or {}).get("failing"):
        # A live process whose every run fails (a broken store) projects nothing.
        out["detail"] = "projections failing: " + str((st["last_error"] or {}).get("error"))
        return False, out
    return True, out


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


@router.get("/readyz", response_model=Ready,
            summary="Log, projections (and their worker) and signature pool ready",
            responses={503: {"model": Ready}})
def readyz(request: Request, ledger: LedgerDep, read_side: ReadSideDep,
           response: Response) -> dict[str, Any]:
    """Ready = the log answers, the read-model store answers, ``serve``'s projections
    worker is running (not dead or waiting out a restart backoff) and the signature pool
    is not broken. Lag is reported, not judged: a catch-up is not an outage (docs/api.md).
    """
    try:
        ledger.log.last_seq()
        log: dict[str, Any] = {"ok": True}
    except Exception as exc:
        log = {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}
    reachable, projections = projection_state(read_side)
    supervisor = getattr(request.app.state, "projections_worker", None)
    worker = supervisor.state() if supervisor is not None else None
    projections["worker"] = worker
    projections["ok"] = reachable and (worker is None or worker["alive"])
    if reachable and worker is not None and not worker["alive"]:
        projections["detail"] = "projections worker not running"
    signatures = ledger.verifier.health()
    ready = log["ok"] and projections["ok"] and signatures["ok"]
    response.status_code = 200 if ready else 503
    witnessing = getattr(request.app.state, "witnessing", None)
    return {"status": "ready" if ready else "not_ready", "log": log,
            "projections": projections, "signatures": signatures,
            "sequencer": _sequencer(request, ledger),
            "witnesses": witnessing.status() if witnessing is not None else []}


def _sequencer(request: Request, ledger: Any) -> dict[str, Any] | None:
    """Which events partitions this process sequences, and who sequences the others."""
    if ledger.cfg.backend != "kafka":
        return None
    from ledger.intake import sequencer_status

    worker = getattr(request.app.state, "sequencing", None)
    try:
        return sequencer_status(ledger.log, f"{ledger.cfg.kafka_topic_prefix}.intake", worker)
    except Exception:  # reported, not judged: never let it fail readiness
        return None


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
    witnessing = getattr(request.app.state, "witnessing", None)
    text = counters.render(sizes, lag, alerts,
                           witnessing.status() if witnessing is not None else [])
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")
