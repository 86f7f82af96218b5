"""The DPO's forms: record a breach or a rights request, step by step (docs/auditors.md).

``/c/{controller}/record`` lists the open cases and opens a new one;
``/c/{controller}/record/{case}/{case_id}`` shows a case's state as the read models see it
and a form for each of its steps. A form posts to ``…/record/{case}/{step}``; the server
turns it into an event signed by its own producer ``web-forms`` (``ledger.webforms``),
naming the signed-in key in ``data.ext.recorded_by``.

Who may record: keys whose role is in ``ledger.webforms.RECORDING_ROLES`` (admin). An
auditor key sees the same pages without forms, and a post with it is the 403 page.

Why the answers are what they are:
- a form that cannot be recorded is the same page again, status 422, with each field's
  error beside it (ingest's rejection detail mapped to its field) — never a 500;
- CSRF: the session cookie is ``SameSite=Strict`` and every post is checked for the same
  origin (``api.web.session.SameOrigin``); on top, each form carries a per-session token,
  HMAC-SHA256 of the session cookie under a key of this process, so a post without the
  page that served it is refused (403) — and the token is worthless without the cookie;
- after a post the browser is sent (303) to the case page, which waits up to
  ``CATCH_UP_SECONDS`` for the read models to apply the new event; if they have not, it
  says "recorded, projecting…" and reloads itself until they have;
- each rendered form carries its own event id, so a form sent twice is recorded once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.readside import NotCaughtUp
from api.web import nav
from api.web.pages import context, model
from api.web.render import render
from api.web.session import COOKIE, PageError, SameOrigin, SignedIn, ViewedController
from ledger.apikeys import ApiKey
from ledger.config import ConfigError
from ledger.webforms import (
    CASES,
    RECORDING_ROLES,
    STEPS,
    FormRejected,
    Step,
    WebForms,
    local_input,
    new_case_id,
    steps_of,
)

router = APIRouter(include_in_schema=False)
nav.add("record", "Record")

CATCH_UP_SECONDS = 2.0
CSRF_FIELD = "csrf_token"
FORM_ID_FIELD = "form_event_id"
CASE_NAMES = {"breach": "Breach", "rights_request": "Rights request"}
PLURALS = {"breach": "Breaches", "rights_request": "Rights requests"}
READ_MODELS = {"breach": "breaches", "rights_request": "rights_requests"}
#: What a case's state reads like, read-model field -> label (shown in this order).
STATE_FIELDS = {
    "breach": [("status", "Status"), ("detected_at", "Detected"), ("aware_at", "Aware"),
               ("authority_due", "Authority to be notified by"), ("risk", "Risk"),
               ("notified_at", "Authority notified"),
               ("subjects_communicated_at", "Data subjects told"),
               ("exemption", "Exemption (Art. 34(3))"), ("closed_at", "Closed")],
    "rights_request": [("status", "Status"), ("right", "Right"),
                       ("received_at", "Received"), ("due", "Legal due"),
                       ("extended_due", "Extended due"), ("promised_due", "Promised by"),
                       ("binding_due", "Binding date"), ("closed_at", "Closed")],
}
TIME_FIELDS = {"detected_at", "aware_at", "authority_due", "notified_at",
               "subjects_communicated_at", "closed_at", "received_at", "due",
               "extended_due", "promised_due", "binding_due"}


def web_forms(request: Request) -> WebForms:
    """One per app, sharing the API's ingest lock (one writer at a time)."""
    state = request.app.state
    forms = getattr(state, "web_forms", None)
    if forms is None:
        forms = state.web_forms = WebForms(state.ledger, state.ingest_lock, state.clock)
    return forms


def csrf_token(request: Request) -> str:
    """The per-session token: HMAC of the session cookie under this process's key."""
    state = request.app.state
    secret = getattr(state, "web_forms_secret", None)
    if secret is None:
        secret = state.web_forms_secret = secrets.token_bytes(32)
    cookie = request.cookies.get(COOKIE, "")
    return hmac.new(secret, cookie.encode(), hashlib.sha256).hexdigest()


def may_record(key: ApiKey) -> bool:
    return key.role in RECORDING_ROLES


def _case(case: str) -> str:
    if case not in CASES:
        raise PageError(404, "Not found", f"There is no kind of case called {case!r}.")
    return case


def _cases(request: Request, controller: str, case: str) -> list[dict[str, Any]]:
    return model(request, READ_MODELS[case], controller, clock=request.app.state.clock)


def _id_of(case: str, item: dict[str, Any]) -> str:
    return item["breach_id" if case == "breach" else "request_id"]


def _form(request: Request, step: Step, controller: str, tz: str,
          values: dict[str, Any] | None = None, errors: dict[str, str] | None = None,
          case_id: str | None = None) -> dict[str, Any]:
    """What the template needs to draw one step's form."""
    forms = web_forms(request)
    zone = forms.timezone(controller)
    now = request.app.state.clock.now()
    shown: dict[str, Any] = dict(values or {})
    if values is None:  # a fresh form: suggest the id and the time of now
        for f in step.fields:
            if f.kind == "datetime" and f.required:
                shown[f.name] = local_input(now, zone)
        if step.opens:
            shown[step.id_field] = new_case_id(step.case, now)
    return {"step": step, "values": shown, "errors": errors or {}, "case_id": case_id,
            "action": f"/c/{controller}/record/{step.case}/{step.slug}",
            "csrf": csrf_token(request),
            "form_event_id": (values or {}).get(FORM_ID_FIELD) or forms_event_id(),
            "tz": zone.key,
            "fields": [f for f in step.fields if not (case_id and f.name == step.id_field)]}


def forms_event_id() -> str:
    """The event id a rendered form will record under (so a resend is a duplicate)."""
    return str(uuid.uuid4())


@router.get("/c/{controller}/record", response_class=HTMLResponse)
def record_page(request: Request, controller: ViewedController, key: SignedIn) -> HTMLResponse:
    ctx = context(request, controller)
    lists = {case: _cases(request, controller, case) for case in CASES}
    opening = ({case: _form(request, steps_of(case)[0], controller, ctx["tz"])
                for case in CASES} if may_record(key) else {})
    return render(request, "record.html", **ctx, title="Record", lists=lists,
                  opening=opening, may_record=may_record(key), names=CASE_NAMES, plurals=PLURALS,
                  roles=RECORDING_ROLES)


@router.get("/c/{controller}/record/{case}/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, controller: ViewedController, key: SignedIn,
              case: Annotated[str, Path(max_length=32)],
              case_id: Annotated[str, Path(max_length=128)],
              recorded: Annotated[str | None, Query(max_length=64)] = None) -> HTMLResponse:
    return _case_page(request, controller, key, _case(case), case_id, recorded=recorded)


def _case_page(request: Request, controller: str, key: ApiKey, case: str, case_id: str,
               recorded: str | None = None, failed: dict[str, Any] | None = None,
               status: int = 200) -> HTMLResponse:
    ctx = context(request, controller)
    projecting = False
    if recorded:  # read-your-writes: wait briefly for the worker to apply the new event
        try:
            request.app.state.read_side.ensure_caught_up(controller, wait=CATCH_UP_SECONDS)
        except NotCaughtUp:
            projecting = True
        except AttributeError:  # no read side at all: model() below says so
            pass
    item = next((i for i in _cases(request, controller, case) if _id_of(case, i) == case_id),
                None)
    if item is None and not projecting:
        raise PageError(404, "Not found", f"{CASE_NAMES[case]} {case_id} is not in the"
                        " ledger, or this key may not see it.")
    id_field = "breach_id" if case == "breach" else "request_id"
    findings = [f for f in model(request, "findings", controller,
                                 clock=request.app.state.clock)
                if f.get(id_field) == case_id]
    forms = []
    if may_record(key):
        for step in steps_of(case)[1:]:
            if failed and failed["step"] is step:
                forms.append(_form(request, step, controller, ctx["tz"], failed["values"],
                                   failed["errors"], case_id))
            else:
                forms.append(_form(request, step, controller, ctx["tz"], case_id=case_id))
    headers = {"Refresh": "2"} if projecting else None
    return render(request, "record_case.html", status=status, headers=headers, **ctx,
                  title=f"{CASE_NAMES[case]} {case_id}", case=case, case_id=case_id,
                  name=CASE_NAMES[case], item=item, findings=findings, forms=forms,
                  state_fields=STATE_FIELDS[case], time_fields=TIME_FIELDS,
                  recorded=recorded, projecting=projecting, may_record=may_record(key),
                  failed_step=failed["step"].slug if failed else None)


@router.post("/c/{controller}/record/{case}/{step}", dependencies=[SameOrigin])
async def record_step(request: Request, controller: ViewedController, key: SignedIn,
                      case: Annotated[str, Path(max_length=32)],
                      step: Annotated[str, Path(max_length=32)]) -> Response:
    case = _case(case)
    if not may_record(key):
        raise PageError(403, "Read-only key", f"This key ({key.role}) may read these pages"
                        f" but not record: recording needs a key with role"
                        f" {' or '.join(RECORDING_ROLES)}.")
    form = await request.form()
    if not hmac.compare_digest(str(form.get(CSRF_FIELD, "")), csrf_token(request)):
        raise PageError(403, "Refused", "This form is not from this session's pages (its"
                        " token is missing or stale): open the page again and resend.")
    the_step = STEPS.get((case, step))
    if the_step is None:
        raise PageError(404, "Not found", f"A {CASE_NAMES[case].lower()} has no step {step!r}.")
    values: dict[str, Any] = {k: (form.getlist(k) if len(form.getlist(k)) > 1 else v)
                              for k, v in form.items() if k != CSRF_FIELD}
    for f in the_step.fields:  # several checked boxes arrive as a list, one as a string
        if f.kind == "choices":
            values[f.name] = form.getlist(f.name)
    case_id = None if the_step.opens else str(form.get(the_step.id_field, "")) or None
    try:
        rec = await run_in_threadpool(
            web_forms(request).record, controller, case, step, values, key.key_id, key.role,
            case_id=case_id, event_id=str(form.get(FORM_ID_FIELD, "")) or None)
    except (FormRejected, ConfigError, PermissionError) as exc:
        errors = (exc.errors if isinstance(exc, FormRejected) else {"": str(exc)})
        return _rejected(request, controller, key, the_step, values, errors, case_id)
    target = case_id or str(values.get(the_step.id_field, ""))
    return RedirectResponse(f"/c/{controller}/record/{case}/{target}?recorded={rec.event_id}",
                            status_code=303)


def _rejected(request: Request, controller: str, key: ApiKey, step: Step,
              values: dict[str, Any], errors: dict[str, str],
              case_id: str | None) -> HTMLResponse:
    """The page the form was on, again: 422 with each error beside its field."""
    ctx = context(request, controller)
    if step.opens or case_id is None:
        lists = {case: _cases(request, controller, case) for case in CASES}
        opening = {case: _form(request, steps_of(case)[0], controller, ctx["tz"])
                   for case in CASES}
        opening[step.case] = _form(request, step, controller, ctx["tz"], values, errors)
        return render(request, "record.html", status=422, **ctx, title="Record",
                      lists=lists, opening=opening, may_record=True, names=CASE_NAMES,
                      plurals=PLURALS, roles=RECORDING_ROLES, failed_case=step.case)
    return _case_page(request, controller, key, step.case, case_id,
                      failed={"step": step, "values": values, "errors": errors},
                      status=422)
