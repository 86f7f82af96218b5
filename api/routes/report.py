"""The accountability report (Art. 5(2)) and the consent overview over every subject.

The report is made like the evidence bundle's: only once the read models have applied
every event of the controller (else 503 ``projections_catching_up``), and anchored to a
signed checkpoint that covers them (signed on the spot when the tree grew since the last
one), so the figures can be traced to a tree head anyone can verify (docs/report.md).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import ClockDep, LedgerDep, ReadSideDep, VisibleController
from api.errors import ApiError
from api.readside import NotCaughtUp, ReadSide
from api.routes.proofs import latest_covering
from api.routes.read import ERRORS, catching_up, parse_time, read_model, time_query
from ledger.clock import Clock
from ledger.personal import with_personal_data
from ledger.service import Ledger

router = APIRouter(tags=["read"], responses=ERRORS)

Format = Literal["json", "html", "csv", "xlsx", "pdf"]


def make_report(ledger: Ledger, lock: Any, read_side: ReadSide | None, controller: str,
                clock: Clock, start: Any, end: Any, fmt: str) -> bytes:
    from projections.accountability import checkpoint_doc
    from projections.report import render

    if read_side is None:
        raise ApiError(503, "projections_unavailable",
                       "the read models are not available in this deployment")
    read_side.ensure_caught_up(controller)
    size = ledger.log.size(controller)
    cp = checkpoint_doc(latest_covering(ledger, lock, controller, size), ledger.verifier_key
                        ) if size else None
    doc = read_model(read_side, "report", controller, clock=clock, start=start, end=end,
                     checkpoint=cp)
    return render(with_personal_data(doc, ledger.log, ledger.keys), fmt)


@router.get(
    "/v1/controllers/{controller}/report",
    summary="Accountability report (Art. 5(2)) for a period",
    description=(
        "The record of processing, lawful bases, consent statistics, recipients and "
        "transfers, rights-request timeliness, the breach register with timelines, every "
        "finding with its evidence, the identity policy and the signed checkpoint that "
        "anchors it. `from <= t < to` selects what is counted (RFC 3339 or YYYY-MM-DD, "
        "a date meaning 00:00 UTC; both optional). `format`: json (default), html "
        "(self-contained page with SVG charts), csv (findings), xlsx (one sheet per "
        "section), pdf. docs/report.md explains every figure."
    ),
    response_class=Response,
    responses={200: {"content": {
        "application/json": {"schema": {"type": "object"}},
        "text/html": {"schema": {"type": "string"}},
        "text/csv": {"schema": {"type": "string"}},
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
            "schema": {"type": "string", "format": "binary"}},
        "application/pdf": {"schema": {"type": "string", "format": "binary"}},
    }, "description": "The report in the format asked for."}},
)
async def get_report(
    request: Request,
    controller: VisibleController,
    ledger: LedgerDep,
    read_side: ReadSideDep,
    clock: ClockDep,
    from_: Annotated[str | None, time_query("Start of the period (inclusive)", "from")] = None,
    to: Annotated[str | None, time_query("End of the period (exclusive)")] = None,
    format: Annotated[Format, Query(description="json | html | csv | xlsx | pdf")] = "json",
) -> Response:
    from projections.report import FORMATS

    start, end = parse_time(from_, "from"), parse_time(to, "to")
    if start and end and start > end:
        raise ApiError(422, "invalid_range", "from is after to")
    try:
        body = await run_in_threadpool(make_report, ledger, request.app.state.ingest_lock,
                                       read_side, controller, clock, start, end, format)
    except NotCaughtUp as exc:
        raise catching_up(exc) from None
    media, ext = FORMATS[format]
    headers = {}
    if format in ("csv", "xlsx", "pdf"):
        headers["Content-Disposition"] = f'attachment; filename="report-{controller}.{ext}"'
    return Response(body, media_type=media, headers=headers)


@router.get("/v1/controllers/{controller}/consents", response_model=dict[str, Any],
            summary="Consent overview per purpose over every subject")
def get_consent_overview(
    controller: VisibleController, read_side: ReadSideDep, clock: ClockDep,
    as_of: Annotated[str | None, time_query(
        "The instant the overview is asked for (default: now)")] = None,
) -> Any:
    """Per purpose, how many subjects have consent in force, withdrawn or expired at
    ``as_of``, and how many consent events there were up to then."""
    at = parse_time(as_of, "as_of")
    return read_model(read_side, "consent_overview", controller, as_of=at, clock=clock)
