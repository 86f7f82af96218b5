"""``/c/{controller}/report``: the accountability report for the signed-in session — a
form (period, format) and the file itself, the same bytes ``GET
/v1/controllers/{c}/report`` answers.

SEAM (issue #17): the report work provides ``api.routes.report.make_report`` (period,
anchoring checkpoint, json | html | csv | xlsx | pdf). While it is not in this build, the
page renders the read side's ``report`` document with ``projections.report`` (json, html,
csv; no period). Both answer through ``report_file``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from api.readside import NotCaughtUp
from api.routes.read import catching_up, parse_time, read_model
from api.web import nav
from api.web.pages import context
from api.web.render import render
from api.web.session import PageError, ViewedController

router = APIRouter(include_in_schema=False)
nav.add("report", "Report")

#: The report is a page of its own: its stylesheet is inline, it runs no script.
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
              "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def _builder() -> Any:
    try:
        from api.routes.report import make_report
    except ImportError:
        return None
    return make_report


FALLBACK_FORMATS = {"html": ("text/html; charset=utf-8", "html"),
                    "json": ("application/json", "json"),
                    "csv": ("text/csv; charset=utf-8", "csv")}


def formats() -> dict[str, tuple[str, str]]:
    """Media type and file extension by format: the report work's, or the fallback's."""
    if _builder() is None:
        return FALLBACK_FORMATS
    from projections.report import FORMATS

    return dict(FORMATS)


def _fallback(request: Request, controller: str, fmt: str) -> bytes:
    from projections import report as rendering

    doc = read_model(request.app.state.read_side, "report", controller,
                     clock=request.app.state.clock)
    fn = {"html": rendering.to_html, "json": rendering.to_json, "csv": rendering.to_csv}[fmt]
    return fn(doc).encode()


async def report_file(request: Request, controller: str, start: Any, end: Any,
                      fmt: str) -> bytes:
    make = _builder()
    state = request.app.state
    if make is None:
        return await run_in_threadpool(_fallback, request, controller, fmt)
    return await run_in_threadpool(make, state.ledger, state.ingest_lock, state.read_side,
                                   controller, state.clock, start, end, fmt)


@router.get("/c/{controller}/report", response_class=HTMLResponse)
async def report_page(request: Request, controller: ViewedController) -> HTMLResponse:
    ctx = context(request, controller)
    return render(request, "report.html", **ctx, title="Accountability report",
                  formats=list(formats()), periods=_builder() is not None)


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
