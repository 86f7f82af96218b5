"""``/signin`` and ``/signout``: an auditor or admin API key for a session cookie
(``api.web.session`` says why the cookie is what it is)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from api.web.render import render
from api.web.session import COOKIE, ROLES, SameOrigin, safe_next, session_key, sessions

router = APIRouter(include_in_schema=False)


@router.get("/signin")
async def signin_page(request: Request,
                      next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    if session_key(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "signin.html", next=safe_next(next), error=None)


@router.post("/signin", dependencies=[SameOrigin])
def signin(request: Request, api_key: Annotated[str, Form(max_length=200)] = "",
           next: Annotated[str, Form(max_length=2000)] = "/") -> Response:
    """Check the key as the API does (hash lookup, constant time); an unknown key and a
    producer key get a page that says so, and no cookie."""
    target = safe_next(next)
    key = request.app.state.auth.store_authenticate(api_key.strip())
    if key is None:
        return render(request, "signin.html", status=401, next=target,
                      error="That API key is not known, or it was revoked.")
    if key.role not in ROLES:
        return render(request, "signin.html", status=403, next=target,
                      error="A producer key cannot open the auditor pages: use an auditor"
                            " or admin key.")
    token = sessions(request).start(key)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, max_age=sessions(request).lifetime, path="/",
                        httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


@router.post("/signout", dependencies=[SameOrigin])
async def signout(request: Request) -> Response:
    sessions(request).end(request.cookies.get(COOKIE))
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response
