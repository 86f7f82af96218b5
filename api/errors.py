"""One error shape for every failure: ``{"code": "...", "detail": "..."}``.

FastAPI's own 401/403/404/405/422 answers are rewritten into it too, so a client branches
on ``code`` whichever layer refused the request.
"""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

# Codes for HTTP-level failures. Per-event ingest codes live in ledger.codes.
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """Raised by routes and dependencies; rendered as ``{code, detail}``."""

    def __init__(
        self, status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


class JSONBytes(Response):
    """JSON rendered by orjson (fast, and no float surprises)."""

    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


def raw_json(body: bytes, status: int = 200) -> Response:
    """Already-serialised JSON (pages of stored events are spliced, not re-encoded)."""
    return Response(content=body, status_code=status, media_type="application/json")


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONBytes:
    return JSONBytes({"code": code, "detail": detail}, status_code=status, headers=headers)


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else err.get("msg", ""))
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONBytes:
        return error_response(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONBytes:
        code = STATUS_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, detail, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONBytes:
        return error_response(422, "invalid_request", _validation_detail(exc))

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONBytes:  # pragma: no cover
        return error_response(500, "internal_error", type(exc).__name__)
