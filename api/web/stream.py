"""``/alerts/stream``: the alert stream (``GET /v1/alerts/stream``) for the signed-in
session. A browser's ``EventSource`` cannot send an ``Authorization`` header, so the pages
read the same stream here, authenticated by the session cookie (sent by the browser only
to this site: SameSite=Strict). Same frames, same ``Last-Event-ID`` rules, same scope:
only alerts of controllers the key may see."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse

from api.routes import alerts
from api.web.session import PageError, session_key

router = APIRouter(include_in_schema=False)


@router.get("/alerts/stream")
async def stream(
    request: Request,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=100)
                             ] = None,
    after: Annotated[int | None, Query(ge=0, le=alerts.MAX_SEQ)] = None,
    controller: Annotated[str | None, Query(max_length=64)] = None,
) -> EventSourceResponse:
    key = session_key(request)
    if key is None:  # no redirect: an EventSource would follow it to an HTML page
        raise PageError(401, "Not signed in", "Sign in to follow the alert stream.")
    return await alerts.stream(request, key, last_event_id=last_event_id, after=after,
                               controller=controller, limit=None, idle_timeout=None)
