"""``GET /v1/controllers/{c}/evidence``: the evidence bundle (zip), built by ledger.bundle.

The accountability report inside comes from the read side (``projections.queries.report``,
as of the bundle's creation, rendered by ``projections.report``); without projections a
summary of the log is used.
The ledger never imports the read side: the report is passed in as bytes.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from api.deps import LedgerDep, ReadSideDep, VisibleController
from api.errors import ApiError
from api.readside import NotCaughtUp, ReadSide
from api.routes.read import ERRORS, catching_up, parse_time, time_query
from ledger.bundle import BundleError, save_bundle
from ledger.bundle_check import evidence_ids
from ledger.clock import format_rfc3339
from ledger.personal import with_personal_data
from ledger.service import Ledger

router = APIRouter(tags=["evidence"], responses=ERRORS)


def render_html(doc: dict[str, Any]) -> bytes:
    """A readable page for any JSON report: nested objects become nested tables."""

    def block(value: Any) -> str:
        if isinstance(value, dict):
            rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{block(v)}</td></tr>"
                           for k, v in value.items())
            return f"<table>{rows}</table>"
        if isinstance(value, list):
            if not value:
                return "<em>none</em>"
            return "<ol>" + "".join(f"<li>{block(v)}</li>" for v in value) + "</ol>"
        return html.escape("" if value is None else str(value))

    title = html.escape(f"Accountability report — {doc.get('controller', '')}")
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{title}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em;"
        f"text-align:left;vertical-align:top}}</style><h1>{title}</h1>{block(doc)}</html>"
    ).encode()


def log_summary(ledger: Ledger, controller: str, start: Any, end: Any) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for ev in ledger.log.events(controller=controller):
        counts[ev.type] = counts.get(ev.type, 0) + 1
    ctl = ledger.registry.controllers.get(controller)
    return {
        "controller": controller,
        "registration": ctl.data if ctl else None,
        "period": {"from": format_rfc3339(start) if start else None,
                   "to": format_rfc3339(end) if end else None},
        "generated_at": format_rfc3339(ledger.clock.now()),
        "log": {"size": ledger.log.size(controller), "events_by_type": dict(sorted(
            counts.items()))},
        "note": "projections not installed: log summary only",
    }


def report_members(ledger: Ledger, read_side: ReadSide | None, controller: str, start: Any,
                   end: Any) -> tuple[bytes, bytes, list[str]]:
    """The report's JSON and HTML, stating the bundle's period, and the event ids it cites
    as evidence (the bundle must hold every one: ``ledger.bundle.write_bundle(cited=)``)."""
    if read_side is not None:
        from projections.report import to_html

        # The report must cover every event the bundle holds: not one from read models
        # still behind the log (``NotCaughtUp``: 503 + Retry-After).
        read_side.ensure_caught_up(controller)
        # the report counts the bundle's period, and its ``period`` key says so
        doc = with_personal_data(read_side.call("report", controller, clock=read_side.clock,
                                                start=start, end=end),
                                 ledger.log, ledger.keys)
        body, page = orjson.dumps(doc, option=orjson.OPT_INDENT_2), to_html(doc).encode()
    else:
        doc = log_summary(ledger, controller, start, end)
        body, page = orjson.dumps(doc, option=orjson.OPT_INDENT_2), render_html(doc)
    return body, page, sorted(set(evidence_ids(doc)))



def make_bundle(ledger: Ledger, read_side: ReadSide | None, controller: str, start: Any,
                end: Any) -> Path:
    """The bundle, streamed to a temporary file (a period of a large log does not sit in
    memory); the caller deletes it once sent."""
    report_json, report_html, cited = report_members(ledger, read_side, controller, start,
                                                     end)
    fd, name = tempfile.mkstemp(prefix="auditledger-evidence-", suffix=".zip")
    os.close(fd)
    path = Path(name)
    try:
        save_bundle(ledger, controller, path, start, end, (report_json, report_html),
                    cited=cited)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


@router.get(
    "/v1/controllers/{controller}/evidence",
    summary="Evidence bundle (zip) for a period, verifiable offline",
    description=(
        "Every event between the signed checkpoints at or before `from` and at or after "
        "`to` (RFC 3339 or YYYY-MM-DD, on `occurred_at`; both optional) with the "
        "compact-range proof of both edges, the administration events before them, the "
        "producer and log keys, checkpoints with consistency proofs, the proof to the "
        "newest checkpoint, and the accountability report (JSON + HTML). Format: "
        "docs/verification.md. Check it with `auditledger verify FILE.zip --log-key KEY`."
    ),
    response_class=Response,
    responses={200: {"content": {"application/zip": {
        "schema": {"type": "string", "format": "binary"}}},
        "description": "The bundle."}},
)
async def get_evidence(
    controller: VisibleController,
    ledger: LedgerDep,
    read_side: ReadSideDep,
    from_: Annotated[str | None, time_query(
        "Start of the period (inclusive), on `occurred_at`", "from")] = None,
    to: Annotated[str | None, time_query("End of the period (exclusive)")] = None,
) -> Response:
    start, end = parse_time(from_, "from"), parse_time(to, "to")
    if start and end and start > end:
        raise ApiError(422, "invalid_range", "from is after to")
    try:
        path = await run_in_threadpool(make_bundle, ledger, read_side, controller, start, end)
    except BundleError as exc:
        raise ApiError(409, "no_checkpoint", str(exc)) from None
    except NotCaughtUp as exc:
        raise catching_up(exc) from None
    return FileResponse(path, media_type="application/zip",
                        filename=f"evidence-{controller}.zip",
                        background=BackgroundTask(path.unlink, missing_ok=True))
