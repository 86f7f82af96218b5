"""The pieces of the web pages that need no browser: sessions (expiry, idle, revocation),
the sign-in answers and cookie, the cross-site form refusal, headers, the OpenAPI document
without HTML routes, and the filters that turn read-model values into words."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.auth import Authenticator
from api.web.render import duration, hours_left, humanize, retention, text, times_in, when
from api.web.session import COOKIE, Sessions, safe_next
from ledger.apikeys import ApiKeyStore
from tests.api.conftest import Api, make_api
from tests.conftest import CONTROLLER, OTHER


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ApiKeyStore]:
    s = ApiKeyStore(tmp_path / "auth.sqlite")
    yield s
    s.close()


def test_session_ends_at_its_lifetime_when_idle_and_when_the_key_is_revoked(
        store: ApiKeyStore) -> None:
    clock = Clock()
    sessions = Sessions(Authenticator(store), now=clock, lifetime=100, idle=30)
    _, key = store.create("auditor", (CONTROLLER,))
    s = sessions.start(key)
    assert sessions.get(s) == key
    for _ in range(3):  # active use keeps it alive until the absolute end
        clock.t += 25
        assert sessions.get(s) == key
    clock.t += 25
    assert sessions.get(s) is None  # 100 s after sign-in: the end of its lifetime
    s2 = sessions.start(key)
    clock.t += 30
    assert sessions.get(s2) is None  # idle for 30 s
    s3 = sessions.start(key)
    assert store.revoke(key.key_id)
    assert sessions.get(s3) is None
    assert sessions.get("made-up") is None and sessions.get(None) is None


def test_the_token_is_stored_hashed(store: ApiKeyStore) -> None:
    sessions = Sessions(Authenticator(store))
    _, key = store.create("admin")
    token = sessions.start(key)
    assert token not in repr(sessions._by_hash) and len(sessions._by_hash) == 1


@pytest.mark.parametrize(("value", "safe"), [
    ("/c/NO-1/findings?x=1", "/c/NO-1/findings?x=1"), ("//evil.example/", "/"),
    ("https://evil.example/", "/"), ("/\\evil", "/"), (None, "/"), ("", "/")])
def test_next_is_a_path_on_this_site(value: str | None, safe: str) -> None:
    assert safe_next(value) == safe


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Api]:
    a, store = make_api(tmp_path)
    with a.client:
        yield a
    store.close()
    a.world.ledger.close()


def test_sign_in_answers_and_cookie(web: Api) -> None:
    c = web.client
    r = c.get(f"/c/{CONTROLLER}/findings", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == f"/signin?next=/c/{CONTROLLER}/findings"
    assert c.post("/signin", data={"api_key": "alk_nope"}).status_code == 401
    r = c.post("/signin", data={"api_key": web.tokens["producer_a"]})
    assert r.status_code == 403 and "producer key" in r.text
    assert COOKIE not in c.cookies
    r = c.post("/signin", data={"api_key": web.tokens["auditor_a"], "next": "//evil/"},
               follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    for part in ("HttpOnly", "SameSite=strict", "Max-Age=28800", "Path=/"):
        assert part in cookie, cookie
    assert "Secure" not in cookie  # plain http on loopback; https adds it
    page = c.get(f"/c/{CONTROLLER}")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert c.get(f"/c/{OTHER}").status_code == 404  # auditor_a may not see it
    assert c.get("/c/XX-NOPE").status_code == 404


def test_a_form_post_from_another_site_is_refused(web: Api) -> None:
    r = web.client.post("/signin", data={"api_key": web.tokens["auditor_a"]},
                        headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and COOKIE not in web.client.cookies
    r = web.client.post("/signin", data={"api_key": web.tokens["auditor_a"]},
                        headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403


def test_the_cookie_stream_needs_a_session(web: Api) -> None:
    r = web.client.get("/alerts/stream")
    assert r.status_code == 401


def test_openapi_describes_the_json_api_only(web: Api) -> None:
    paths = web.client.get("/openapi.json").json()["paths"]
    assert all(p.startswith(("/v1/", "/healthz", "/readyz", "/metrics")) for p in paths), \
        sorted(paths)
    docs = web.client.get("/docs").text
    assert "/static/apidocs/swagger-ui-bundle.js" in docs and "cdn" not in docs
    redoc = web.client.get("/redoc").text
    assert "/static/apidocs/redoc.standalone.js" in redoc and "fonts.googleapis" not in redoc
    bundle = web.client.get("/static/apidocs/redoc.standalone.js").content
    assert b"cdn.redoc.ly" not in bundle and len(bundle) > 100_000


NOW = datetime(2026, 12, 24, 12, 0, tzinfo=UTC)


def test_filters_write_words_not_json() -> None:
    assert text(None) == "not yet assessed" and text([]) == "not yet assessed"
    assert text(True) == "yes" and text(False) == "no"
    assert text(["name", "contact"]) == "name, contact"
    assert text({"record": True, "notify_authority": False}) == \
        "record: yes; notify authority: no"
    assert humanize("notified_late_without_reasons") == "notified late without reasons"
    assert duration("P5Y") == "5 years" and duration("P1D") == "1 day"
    assert retention([{"duration": "P2Y", "starts": "recording made"}]) == \
        "2 years from recording made"


def test_times_in_the_zone_beside_utc() -> None:
    shown = str(when("2026-12-24T15:00:00Z", "Europe/Oslo"))
    assert 'datetime="2026-12-24T15:00:00Z"' in shown
    assert "24 Dec 2026, 16:00" in shown and "CET" in shown and "15:00 UTC" in shown
    summer = str(when("2026-07-01T22:30:00Z", "Europe/Oslo"))
    assert "2 Jul 2026, 00:30" in summer and "CEST" in summer and "1 Jul, 22:30 UTC" in summer
    assert "Thu 24 Dec 2026" in str(when("2026-12-24", "Europe/Oslo"))
    assert "not yet assessed" in str(when(None))
    detail = str(times_in("notified at 2026-12-24T15:00:00Z <b>", "Europe/Oslo"))
    assert "16:00" in detail and "&lt;b&gt;" in detail


def test_breach_clock_in_hours_left() -> None:
    assert hours_left("2026-12-25T15:30:00Z", NOW) == "27 h 30 min left"
    assert hours_left("2026-12-24T10:59:00Z", NOW) == "overdue by 1 h 01 min"
    assert hours_left("2027-01-05T23:00:00Z", NOW, days=True) == "12 days 11 h left"
    assert hours_left(None, NOW) == "not yet assessed"
