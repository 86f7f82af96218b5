"""``/docs`` (Swagger UI) and ``/redoc`` with their JavaScript and CSS served by the API.

FastAPI's own pages load their bundles from a CDN; an auditor on a closed network, or a
browser test without network, would get a blank page. The bundles come from the PyPI
package ``fastapi-offline`` (its ``static/`` folder: ``swagger-ui-bundle.js``,
``swagger-ui.css``, ``redoc.standalone.js``, ``favicon.png``), mounted at
``/static/apidocs``; only the files are used, not its app class. Redoc's Google Fonts link
and Swagger UI's online validator badge are switched off, and the one image ReDoc's bundle
fetches from its CDN (the "API docs by Redocly" logo) is pointed at a local file, so
nothing leaves the machine (``tests/web`` lists every resource the pages load).
"""

from __future__ import annotations

import functools
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = Path(fastapi_offline.__file__).parent / "static"
PREFIX = "/static/apidocs"
DOCS_PATHS = ("/docs", "/docs/oauth2-redirect", "/redoc")

router = APIRouter(include_in_schema=False)


def is_docs(path: str) -> bool:
    return path in DOCS_PATHS


REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
LOCAL_LOGO = b"/static/favicon.svg"


@functools.cache
def redoc_bundle() -> bytes:
    return (ASSETS / "redoc.standalone.js").read_bytes().replace(REDOC_CDN_LOGO, LOCAL_LOGO)


def mount(app: FastAPI) -> None:
    """Mount the bundles (before ``/static``, which would shadow the prefix); ReDoc's is
    served patched, by a route ahead of the mount."""

    @app.get(f"{PREFIX}/redoc.standalone.js", include_in_schema=False)
    async def redoc_js() -> Response:
        return Response(redoc_bundle(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="apidocs")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} — API (Swagger UI)",
        oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
        swagger_js_url=f"{root}{PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{root}{PREFIX}/favicon.png",
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get("/docs/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} — API (ReDoc)",
        redoc_js_url=f"{root}{PREFIX}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{PREFIX}/favicon.png",
        with_google_fonts=False,
    )
