"""``/c/{controller}/report``: the accountability report for the signed-in session — a
form (period, format) and the file itself, the same bytes ``GET
/v1/controllers/{c}/report`` answers.

Both are made by ``api.routes.report.make_report`` (period, anchoring checkpoint, json |
html | csv | xlsx | pdf), so a page download and an API call give the same bytes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from api.readside import NotCaughtUp
from api.routes.read import catching_up, parse_time
from api.routes.report import make_report
from api.web import nav
from api.web.pages import context
from api.web.render import render
from api.web.session import PageError, ViewedController
from projections.report import FORMATS

router = APIRouter(include_in_schema=False)
nav.add("report", "Report")

#: The report is a page of its own: its stylesheet is inline, it runs no script.
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
              "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def formats() -> dict[str, tuple[str, str]]:
    """Media type and file extension by format."""
    return dict(FORMATS)


async def report_file(request: Request, controller: str, start: Any, end: Any,
                      fmt: str) -> bytes:
    state = request.app.state
    return await run_in_threadpool(make_report, state.ledger, state.ingest_lock,
                                   state.read_side, controller, state.clock, start, end, fmt)


@router.get("/c/{controller}/report", response_class=HTMLResponse)
async def report_page(request: Request, controller: ViewedController) -> HTMLResponse:
    ctx = context(request, controller)
    return render(request, "report.html", **ctx, title="Accountability report",
                  formats=list(formats()))


@router.get("/c/{controller}/report/file")
async def report_download(
    request: Request, controller: ViewedController,
    # Plain strings: an empty date field arrives as "", which means "no bound" here.
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    format: Annotated[str, Query(max_length=10)] = "html",
) -> Response:
    known = formats()
    if format not in known:
        raise PageError(404, "Not found", f"No report format {format!r} here.")
    try:
        start, end = parse_time(from_ or None, "from"), parse_time(to or None, "to")
        if start and end and start > end:
            raise ApiError(422, "invalid_range", "the start of the period is after its end")
        body = await report_file(request, controller, start, end, format)
    except NotCaughtUp as exc:
        err = catching_up(exc)
        raise PageError(503, "Read models catching up", err.detail, err.headers) from None
    except ApiError as exc:
        raise PageError(exc.status, "Cannot make this report", exc.detail,
                        exc.headers) from None
    media, ext = known[format]
    headers = {"Cache-Control": "no-store"}
    if format == "html":
        headers["Content-Security-Policy"] = REPORT_CSP
    else:
        headers["Content-Disposition"] = f'attachment; filename="report-{controller}.{ext}"'
    return Response(body, media_type=media, headers=headers)
