"""Webhook receivers per controller (admin keys only).

``POST`` returns the signing secret once; it is never shown again (``GET`` lists id, URL
and creation time). Deleting a webhook cancels the deliveries still queued for it.
Signature: see ``projections.alerts.sinks.webhook`` and docs/alerts.md.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.types import Receive, Scope, Send

from api.auth import require_role
from api.deps import CurrentKey, LedgerDep, controller_exists
from api.errors import ApiError, not_found
from api.routes.alerts import alert_state
from api.schemas import Error


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


#: What a webhook URL must be: absolute http or https with a host, no white space.
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s]+([/?#]\S*)?$"


class WebhookIn(BaseModel):
    url: str = Field(max_length=2000, pattern=URL_PATTERN, description=(
        "The URL that receives POSTed alerts: absolute `http://` or `https://` with a"
        " host, no white space, at most 2000 characters (schema pattern). Anything else"
        " answers 422 `invalid_request`."))


class Webhook(BaseModel):
    id: str
    controller: str
    url: str
    created_at: str


class WebhookCreated(Webhook):
    secret: str = Field(description="HMAC-SHA256 key for X-Auditledger-Signature. "
                        "Shown once.")


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
             response_model=WebhookCreated, summary="Register a webhook (secret shown once)",
             responses={400: {"model": Error, "description": "`bad_request`: the body is "
                              "not JSON"}})
def create_webhook(controller: AdminController, body: WebhookIn, request: Request
                   ) -> dict[str, Any]:
    parts = urlsplit(body.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(422, "invalid_request", "url: an absolute http(s) URL")
    st = alert_state(request)
    return st.outbox.add_webhook(controller, body.url, st.clock.now())


@router.get("/v1/controllers/{controller}/webhooks", response_model=dict[str, list[Webhook]],
            summary="Webhooks of a controller (without secrets)")
def list_webhooks(controller: AdminController, request: Request) -> dict[str, Any]:
    return {"items": alert_state(request).outbox.webhooks(controller)}


@router.delete("/v1/controllers/{controller}/webhooks/{webhook_id}", status_code=204,
               summary="Delete a webhook; its queued deliveries are cancelled")
def delete_webhook(controller: AdminController,
                   webhook_id: Annotated[str, Path(max_length=64)], request: Request
                   ) -> Response:
    st = alert_state(request)
    if not st.outbox.delete_webhook(controller, webhook_id, st.clock.now()):
        raise not_found(f"webhook {webhook_id}")
    return Response(status_code=204)
