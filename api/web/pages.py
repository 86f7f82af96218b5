"""The controller pages: overview, deadlines board, findings, rights requests, breach
register, record of processing (with recipients and transfers) and the consent overview.

Every page reads what the JSON API reads, through the same ``read_model`` call and the
same query functions (so a page and ``GET /v1/controllers/{c}/…`` show the same numbers
and ids), and renders it as text (``api.web.render``). A read side that is behind answers
the page with the API's 503 and its ``Retry-After``, as an HTML page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.errors import ApiError
from api.routes.read import controller_info, read_model
from api.web.render import render
from api.web.session import PageError, SignedIn, ViewedController
from ledger.personal import case_states

router = APIRouter(include_in_schema=False)

SEVERITIES = ("high", "medium", "low")


def model(request: Request, name: str, controller: str, **kw: Any) -> Any:
    """``queries.<name>`` as the API calls it; its refusal as an HTML error page."""
    try:
        return read_model(request.app.state.read_side, name, controller, **kw)
    except ApiError as exc:
        title = "Read models catching up" if exc.status == 503 else "Not available"
        raise PageError(exc.status, title, exc.detail, exc.headers) from None


def context(request: Request, controller: str) -> dict[str, Any]:
    """What every controller page's header needs: id, name, time zone."""
    ledger = request.app.state.ledger
    ctl = ledger.registry.controllers.get(controller)
    data = ctl.data if ctl else {}
    return {"controller": controller, "controller_name": data.get("name") or controller,
            "tz": data.get("timezone") or "UTC", "now": request.app.state.clock.now()}


def visible_controllers(request: Request, key: Any) -> list[str]:
    """Those ``GET /v1/controllers`` lists for this key, in the same order."""
    from api.deps import controller_exists

    ledger = request.app.state.ledger
    if key.role == "admin":
        return ledger.log.controllers()
    return sorted(c for c in key.controllers if controller_exists(ledger, c))


@router.get("/", response_class=HTMLResponse)
def controllers_page(request: Request, key: SignedIn) -> HTMLResponse:
    ledger, clock = request.app.state.ledger, request.app.state.clock
    rows = []
    for c in visible_controllers(request, key):
        info = controller_info(ledger, c)
        row: dict[str, Any] = {**info, "findings": None, "deadlines": None, "next": None,
                               "overdue": None}
        try:
            findings = read_model(request.app.state.read_side, "findings", c, clock=clock)
            deadlines = read_model(request.app.state.read_side, "deadlines", c, clock=clock)
            row["findings"] = {s: sum(f["severity"] == s for f in findings)
                               for s in SEVERITIES}
            row["findings_total"] = len(findings)
            row["deadlines"] = len(deadlines)
            row["overdue"] = sum(d["overdue"] for d in deadlines)
            row["next"] = next((d for d in deadlines if not d["overdue"]), None)
        except ApiError as exc:
            row["unavailable"] = exc.detail
        rows.append(row)
    return render(request, "controllers.html", rows=rows, now=clock.now(),
                  title="Controllers")


@router.get("/c/{controller}", response_class=HTMLResponse)
def controller_page(request: Request, controller: ViewedController) -> HTMLResponse:
    ctx = context(request, controller)
    clock = request.app.state.clock
    ledger = request.app.state.ledger
    reg = model(request, "controller", controller)
    findings = model(request, "findings", controller, clock=clock)
    deadlines = model(request, "deadlines", controller, clock=clock)
    cp = ledger.log.latest_checkpoint(controller)
    return render(request, "controller.html", **ctx, title=ctx["controller_name"],
                  reg=reg, info=controller_info(ledger, controller), checkpoint=cp,
                  findings=findings, deadlines=deadlines[:5],
                  by_severity={s: sum(f["severity"] == s for f in findings)
                               for s in SEVERITIES})


@router.get("/c/{controller}/deadlines", response_class=HTMLResponse)
def deadlines_page(request: Request, controller: ViewedController) -> HTMLResponse:
    ctx = context(request, controller)
    items = model(request, "deadlines", controller, clock=request.app.state.clock)
    outbox = getattr(request.app.state.alerts, "outbox", None)
    after = outbox.last_seq() if outbox is not None else 0
    now = ctx["now"]
    for i in items:
        upcoming = [a for a in i.get("alerts", []) if a["at"] > _iso(now)]
        i["next_alert"] = upcoming[0] if upcoming else None
    return render(request, "deadlines.html", **ctx, title="Deadlines", items=items,
                  stream_after=after, alerts_available=outbox is not None)


def _iso(at: Any) -> str:
    from ledger.clock import format_rfc3339

    return format_rfc3339(at)


@router.get("/c/{controller}/findings", response_class=HTMLResponse)
def findings_page(request: Request, controller: ViewedController) -> HTMLResponse:
    ctx = context(request, controller)
    items = model(request, "findings", controller, clock=request.app.state.clock)
    ids = sorted({e for f in items for e in f["evidence"]})
    events = request.app.state.ledger.log.lookup(controller, ids) if ids else {}
    return render(request, "findings.html", **ctx, title="Findings", items=items,
                  events=events,
                  by_severity={s: sum(f["severity"] == s for f in items) for s in SEVERITIES})


@router.get("/c/{controller}/rights-requests", response_class=HTMLResponse)
def rights_page(request: Request, controller: ViewedController) -> HTMLResponse:
    ctx = context(request, controller)
    items = model(request, "rights_requests", controller, clock=request.app.state.clock)
    ledger = request.app.state.ledger
    items = case_states(ledger.log, ledger.keys, controller, items)
    return render(request, "rights.html", **ctx, title="Rights requests", items=items)


def timeline(b: dict[str, Any]) -> list[dict[str, Any]]:
    """A breach's story in time order: what happened and what the law expected when."""
    steps: list[dict[str, Any]] = []

    def step(at: Any, what: str, note: str | None = None, kind: str = "fact") -> None:
        if at:
            steps.append({"at": at, "what": what, "note": note, "kind": kind})

    step(b.get("detected_at"), "Detected")
    step(b.get("aware_at"), "Controller became aware (the 72-hour clock starts)")
    step(b.get("awareness_due"), "Awareness due (detected, not yet acknowledged)",
         kind="deadline")
    step(b.get("authority_due"), "Supervisory authority to be notified by", kind="deadline")
    for n in b.get("notifications") or []:
        reasons = n.get("delay_reasons")
        step(n.get("notified_at"), f"Notified {n.get('authority') or 'the authority'}"
             f" ({n.get('phase') or 'phase not given'})",
             f"reasons for delay: {reasons}" if reasons else None)
    step(b.get("subjects_communicated_at"), "Data subjects told (Art. 34)")
    step(b.get("closed_at"), "Closed")
    steps.sort(key=lambda s: str(s["at"]))
    return steps


@router.get("/c/{controller}/breaches", response_class=HTMLResponse)
def breaches_page(request: Request, controller: ViewedController) -> HTMLResponse:
    ctx = context(request, controller)
    items = model(request, "breaches", controller, clock=request.app.state.clock)
    ledger = request.app.state.ledger
    items = case_states(ledger.log, ledger.keys, controller, items)
    for b in items:
        b["timeline"] = timeline(b)
        b["clock_running"] = (b.get("authority_due") is not None and not b.get("notified_at")
                              and (b.get("obligations") or {}).get("notify_authority")
                              is not False and b.get("status") not in ("closed",))
    return render(request, "breaches.html", **ctx, title="Breach register", items=items)


@router.get("/c/{controller}/ropa", response_class=HTMLResponse)
def ropa_page(request: Request, controller: ViewedController) -> HTMLResponse:
    ctx = context(request, controller)
    clock = request.app.state.clock
    ropa = model(request, "ropa", controller, clock=clock)
    recipients = model(request, "recipients", controller)
    transfers = model(request, "transfers", controller)
    invalid = [t for t in transfers if not t["valid"]]
    return render(request, "ropa.html", **ctx, title="Record of processing", ropa=ropa,
                  recipients=recipients, transfers=transfers, invalid=invalid)


def consent_overview(request: Request, controller: str) -> dict[str, Any]:
    """The consent overview per purpose (``projections.queries.consent_overview``)."""
    return model(request, "consent_overview", controller, clock=request.app.state.clock)


@router.get("/c/{controller}/consents", response_class=HTMLResponse)
def consents_page(request: Request, controller: ViewedController) -> HTMLResponse:
    ctx = context(request, controller)
    return render(request, "consents.html", **ctx, title="Consents",
                  overview=consent_overview(request, controller))
