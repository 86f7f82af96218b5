"""The auditor web pages, served by the API under ``/`` (docs/web.md).

Server-rendered (Jinja2, ``api/web/templates``), light JavaScript without a build step,
every asset served from ``/static`` (``api/web/static``) — nothing is loaded from the
network. Every page route is ``include_in_schema=False``: the OpenAPI document describes
the JSON API only, and the schemathesis suite does not generate requests for HTML.

``install(app)`` is what ``create_app`` calls. ``MODULES`` are the routers of the pages;
a new page is a module with a ``router`` added there (docs/web.md, "Adding a page").
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.web import apidocs, explorer, forms, pages, report, signin, stream
from api.web.render import STATIC, render
from api.web.session import PageError, Sessions, SignInRequired, signin_url

MODULES = (signin, pages, explorer, forms, report, stream, apidocs)

#: Pages load nothing from elsewhere and run no inline script (the API docs pages, whose
#: bundles need inline set-up, set their own).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")


def install(app: FastAPI) -> None:
    app.state.web_sessions = Sessions(app.state.auth)
    apidocs.mount(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in MODULES:
        app.include_router(module.router)

    @app.exception_handler(SignInRequired)
    async def _sign_in(_: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(signin_url(exc.next_url), status_code=303)

    @app.exception_handler(PageError)
    async def _page_error(request: Request, exc: PageError) -> Response:
        return render(request, "error.html", status=exc.status, headers=exc.headers,
                      title=exc.title, detail=exc.detail)

    app.add_middleware(SecurityHeaders)


class SecurityHeaders:
    """Pure ASGI middleware (no body wrapping, so the alert stream and the JSON API pay
    nothing): ``nosniff`` and ``Referrer-Policy`` on every answer, the CSP on HTML pages."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = apidocs.is_docs(scope.get("path", ""))

        async def send_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                ctype = dict(headers).get(b"content-type", b"")
                if ctype.startswith(b"text/html") and not docs \
                        and b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", CSP.encode()))
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if b"referrer-policy" not in names:
                    headers.append((b"referrer-policy", b"same-origin"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_headers)
