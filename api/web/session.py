"""Sign-in for the auditor pages: an auditor or admin API key, exchanged once for a
session cookie.

Why a server-side session and not the key in a cookie: the key is a long-lived bearer
secret and the store holds only its hash (``ledger.apikeys``); the cookie holds a fresh
random token instead (256 bits), of which this process keeps only the SHA-256, beside the
key's id, role and controllers. The cookie is ``HttpOnly`` (no script reads it),
``SameSite=Strict`` (no other site's page sends it, which is the pages' CSRF defence, with
the ``Origin`` check on every form post), ``Path=/``, ``Secure`` when served over HTTPS,
and expires: ``SESSION_SECONDS`` after sign-in at the latest, ``IDLE_SECONDS`` after the
last page. Sessions live in memory: a restart signs everyone out, and a revoked key ends
its sessions at their next request.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Path, Request

from api.auth import Authenticator
from ledger.apikeys import ApiKey

COOKIE = "auditledger_session"
SESSION_SECONDS = 8 * 3600  # a working day, then sign in again
IDLE_SECONDS = 3600
ROLES = ("auditor", "admin")


@dataclass
class Session:
    key: ApiKey
    expires: float  # absolute end (monotonic clock)
    seen: float  # last request


class Sessions:
    """Session tokens by SHA-256, thread-safe (pages run on the thread pool)."""

    def __init__(self, auth: Authenticator, now: Callable[[], float] = time.monotonic,
                 lifetime: float = SESSION_SECONDS, idle: float = IDLE_SECONDS) -> None:
        self.auth, self.now, self.lifetime, self.idle = auth, now, lifetime, idle
        self._by_hash: dict[bytes, Session] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _digest(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def start(self, key: ApiKey) -> str:
        token = secrets.token_urlsafe(32)
        now = self.now()
        with self._lock:
            self._drop_expired(now)
            self._by_hash[self._digest(token)] = Session(key, now + self.lifetime, now)
        return token

    def get(self, token: str | None) -> ApiKey | None:
        """The key of a live session, or None (unknown, expired, idle, key revoked)."""
        if not token:
            return None
        now = self.now()
        digest = self._digest(token)
        with self._lock:
            s = self._by_hash.get(digest)
            if s is None:
                return None
            if now >= s.expires or now - s.seen >= self.idle:
                del self._by_hash[digest]
                return None
            s.seen = now
        if not self.auth.active(s.key.key_id):
            self.end(token)
            return None
        return s.key

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._by_hash.pop(self._digest(token), None)

    def _drop_expired(self, now: float) -> None:
        dead = [h for h, s in self._by_hash.items()
                if now >= s.expires or now - s.seen >= self.idle]
        for h in dead:
            del self._by_hash[h]


class SignInRequired(Exception):
    """No live session: the pages answer 303 to ``/signin?next=<this page>``."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PageError(Exception):
    """An HTML error page (404 for a controller or event the key may not see)."""

    def __init__(self, status: int, title: str, detail: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.headers = status, title, detail, headers


def not_found(what: str) -> PageError:
    return PageError(404, "Not found", f"{what} was not found, or this key may not see it.")


def sessions(request: Request) -> Sessions:
    return request.app.state.web_sessions


def session_key(request: Request) -> ApiKey | None:
    key = sessions(request).get(request.cookies.get(COOKIE))
    request.state.web_user = key
    return key


async def signed_in(request: Request) -> ApiKey:
    """The signed-in key, or a redirect to the sign-in page that comes back here."""
    key = session_key(request)
    if key is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    return key


SignedIn = Annotated[ApiKey, Depends(signed_in)]


async def viewed_controller(
    request: Request, key: SignedIn,
    controller: Annotated[str, Path(max_length=64)],
) -> str:
    """The ``{controller}`` of a page: the same 404 page for one that does not exist and
    for one this key may not see (as the API's ``VisibleController``)."""
    from api.deps import controller_exists

    if not key.may_see(controller) or not controller_exists(request.app.state.ledger,
                                                             controller):
        raise not_found(f"Controller {controller}")
    return controller


ViewedController = Annotated[str, Depends(viewed_controller)]


def same_origin(request: Request) -> None:
    """Refuse a form post another site's page made (``Origin`` / ``Sec-Fetch-Site``):
    with the SameSite=Strict cookie this is the CSRF defence of every POST page."""
    origin = request.headers.get("origin")
    if origin and origin != "null":
        if urlsplit(origin).netloc != request.headers.get("host"):
            raise PageError(403, "Refused", "This form was sent from another site.")
    elif request.headers.get("sec-fetch-site") == "cross-site":
        raise PageError(403, "Refused", "This form was sent from another site.")


SameOrigin = Depends(same_origin)


def safe_next(value: str | None) -> str:
    """Only a path on this site (``/c/…``), never ``//evil`` or a full URL."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def signin_url(next_url: str) -> str:
    return "/signin" if next_url == "/" else f"/signin?next={quote(next_url, safe='/')}"
