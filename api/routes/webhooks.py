"""Alert receivers per controller (admin keys only): signed webhooks, e-mail, Slack and
Teams, all under ``…/webhooks`` (``kind``, default ``webhook``, so the original body
``{"url": …}`` still registers a signed webhook).

``POST`` returns a webhook's signing secret once; it is never shown again. The other
kinds' secrets — the SMTP password, the Slack/Teams URL (the URL is the credential) —
are never returned at all: ``GET`` lists what is safe (a chat receiver's host, an
e-mail receiver's server and addresses). Deleting a receiver cancels the deliveries
still queued for it. Signature: ``projections.alerts.sinks.webhook``; the fields are
checked by ``projections.alerts.sinks.config.sink_spec``, shared with the CLI.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag
from starlette.types import Receive, Scope, Send

from api.auth import require_role
from api.deps import CurrentKey, LedgerDep, controller_exists
from api.errors import ApiError, not_found
from api.routes.alerts import alert_state
from api.schemas import Error

try:  # the receivers' rules, shared with the CLI (the API also runs without projections/)
    from projections.alerts.sinks.config import (
        ADDRESS_PATTERN,
        HOST_PATTERN,
        MAX_RECIPIENTS,
        PASSWORD_PATTERN,
        URL_PATTERN,
        USERNAME_PATTERN,
    )
except ImportError:  # pragma: no cover - then every receiver route answers 503
    ADDRESS_PATTERN = HOST_PATTERN = PASSWORD_PATTERN = USERNAME_PATTERN = r"^.+$"
    URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://.+$"
    MAX_RECIPIENTS = 50


class SharedAllowRoute(APIRoute):
    """Starlette answers 405 from the first route whose path matches and names only that
    route's methods in ``Allow``; GET and POST ``…/webhooks`` are two routes, so name the
    methods of every route on the path (RFC 9110 §15.5.6)."""

    methods_by_path: ClassVar[dict[str, set[str]]] = {}

    def __init__(self, path: str, endpoint: Any, **kw: Any) -> None:
        super().__init__(path, endpoint, **kw)
        self.methods_by_path.setdefault(self.path_format, set()).update(self.methods or ())

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            allow = ", ".join(sorted(self.methods_by_path[self.path_format]))
            raise HTTPException(405, headers={"Allow": allow})
        await super().handle(scope, receive, send)


router = APIRouter(tags=["alerts"], route_class=SharedAllowRoute,
                   responses={401: {"model": Error}, 403: {"model": Error},
                              404: {"model": Error}, 422: {"model": Error}})




class WebhookIn(BaseModel):
    kind: Literal["webhook"] = Field("webhook", description="A signed webhook (default).")
    url: str = Field(max_length=2000, pattern=URL_PATTERN, description=(
        "The URL that receives POSTed alerts: absolute `http://` or `https://` with a"
        " host, no space or control character, at most 2000 characters (schema"
        " pattern). Anything else"
        " answers 422 `invalid_request`."))


BaseUrl = Annotated[str | None, Field(max_length=2000, pattern=URL_PATTERN, description=(
    "Where the auditor pages are served: messages link to the case there."))]


class SmtpLogin(BaseModel):
    username: str = Field(max_length=256, pattern=USERNAME_PATTERN)
    password: str = Field(max_length=1024, pattern=PASSWORD_PATTERN, description=(
        "Printable ASCII. Stored for sending, never returned or listed."))


class EmailIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    kind: Literal["email"]
    host: str = Field(max_length=253, pattern=HOST_PATTERN, description="SMTP server.")
    port: int | None = Field(None, ge=1, le=65535, description=(
        "Default 587 (starttls), 465 (ssl), 25 (none)."))
    security: Literal["starttls", "ssl", "none"] = "starttls"
    login: SmtpLogin | None = Field(None, description="SMTP AUTH; none: send without.")
    sender: str = Field(alias="from", max_length=254, pattern=ADDRESS_PATTERN)
    to: list[Annotated[str, Field(max_length=254, pattern=ADDRESS_PATTERN)]] = Field(
        min_length=1, max_length=MAX_RECIPIENTS)
    base_url: BaseUrl = None


class ChatIn(BaseModel):
    url: str = Field(max_length=2000, pattern=URL_PATTERN, description=(
        "The incoming-webhook URL. It is the credential: stored for sending, never"
        " returned or listed (only its host is)."))
    base_url: BaseUrl = None


class SlackIn(ChatIn):
    kind: Literal["slack"]


class TeamsIn(ChatIn):
    kind: Literal["teams"] = Field(description="A Teams Workflows webhook (Adaptive Card).")


def _kind(v: Any) -> str:
    """``kind`` picks the body's schema; a body without one is a signed webhook."""
    k = v.get("kind", "webhook") if isinstance(v, dict) else getattr(v, "kind", "webhook")
    return k if isinstance(k, str) else "?"


ReceiverIn = Annotated[
    Annotated[WebhookIn, Tag("webhook")] | Annotated[EmailIn, Tag("email")]
    | Annotated[SlackIn, Tag("slack")] | Annotated[TeamsIn, Tag("teams")],
    Discriminator(_kind)]


class Webhook(BaseModel):
    id: str
    controller: str
    kind: Literal["webhook"] = "webhook"
    url: str
    created_at: str


class WebhookCreated(Webhook):
    secret: str = Field(description="HMAC-SHA256 key for X-Auditledger-Signature. "
                        "Shown once.")


class EmailReceiver(BaseModel):
    id: str
    controller: str
    kind: Literal["email"]
    created_at: str
    host: str
    port: int
    security: str
    username: str | None
    sender: str = Field(alias="from")
    to: list[str]
    base_url: str | None = None


class ChatReceiver(BaseModel):
    id: str
    controller: str
    kind: Literal["slack", "teams"]
    created_at: str
    host: str = Field(description="The host of the incoming-webhook URL (the URL is secret).")
    base_url: str | None = None


Created = Annotated[WebhookCreated | EmailReceiver | ChatReceiver, Field(discriminator="kind")]
Listed = Annotated[Webhook | EmailReceiver | ChatReceiver, Field(discriminator="kind")]


def admin_controller(
    controller: Annotated[str, Path(max_length=64)], key: CurrentKey, ledger: LedgerDep,
) -> str:
    """404 first (same as everywhere: a controller the key may not see does not exist),
    then 403 for a key that sees it but is not an admin."""
    if not key.may_see(controller) or not controller_exists(ledger, controller):
        raise not_found(f"controller {controller}")
    require_role(key, ("admin",))
    return controller


AdminController = Annotated[str, Depends(admin_controller)]


@router.post("/v1/controllers/{controller}/webhooks", status_code=201,
             response_model=Created, response_model_by_alias=True,
             summary="Register an alert receiver: webhook (secret shown once), email, slack,"
             " teams",
             responses={400: {"model": Error, "description": "`bad_request`: the body is "
                              "not JSON"}})
def create_webhook(controller: AdminController, body: Annotated[ReceiverIn, Body()],
                   request: Request) -> dict[str, Any]:
    st = alert_state(request)  # 503 without the projections package
    from projections.alerts.sinks.config import sink_spec

    try:
        if isinstance(body, EmailIn):
            spec = sink_spec("email", host=body.host, port=body.port, security=body.security,
                             username=body.login.username if body.login else None,
                             password=body.login.password if body.login else None,
                             sender=body.sender, to=body.to, base_url=body.base_url)
        elif isinstance(body, ChatIn):
            spec = sink_spec(body.kind, url=body.url, base_url=body.base_url)
        else:
            spec = sink_spec("webhook", url=body.url)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", str(exc)) from None
    return st.outbox.add_sink(controller, spec, st.clock.now())


@router.get("/v1/controllers/{controller}/webhooks", response_model=dict[str, list[Listed]],
            response_model_by_alias=True,
            summary="Alert receivers of a controller (never their secrets)")
def list_webhooks(controller: AdminController, request: Request,
                  kind: Annotated[Literal["webhook", "email", "slack", "teams"] | None,
                                  Query(description="Only receivers of this kind.")] = None,
                  ) -> dict[str, Any]:
    return {"items": alert_state(request).outbox.webhooks(controller, kind)}


@router.delete("/v1/controllers/{controller}/webhooks/{webhook_id}", status_code=204,
               summary="Delete a receiver; its queued deliveries are cancelled")
def delete_webhook(controller: AdminController,
                   webhook_id: Annotated[str, Path(max_length=64)], request: Request
                   ) -> Response:
    st = alert_state(request)
    if not st.outbox.delete_webhook(controller, webhook_id, st.clock.now()):
        raise not_found(f"webhook {webhook_id}")
    return Response(status_code=204)
