"""Fuzzing ``POST /v1/events`` end to end (issue #14, item 8).

Generated batches mix good events (times anywhere in the accepted range and offsets,
Unicode text, integers at the edges) with bad ones (leap seconds, year 0, huge offsets,
floats, duplicate member names, deep nesting, non-objects, broken signatures) and admin
sequences (register / revoke / re-register / duplicates / conflicting ids). Whatever is
sent: no 5xx, one answer per event, every good event accepted, and at the end every
accepted event passes ``auditledger verify`` and reaches the projections.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.clock import format_rfc3339
from ledger.envelope import complete
from ledger.registry import ADMIN
from ledger.signing import generate_key, load_private_key, public_key_text
from ledger.verify import LogSource, verify_source
from tests.api.conftest import Api, make_api
from tests.conftest import CONTROLLER

BASE = f"/v1/controllers/{CONTROLLER}"
FZ_KEYS = [generate_key() for _ in range(2)]


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory) -> Any:
    a, store = make_api(Path(tmp_path_factory.mktemp("fuzz")))
    with a.client:
        yield a
    store.close()
    a.world.ledger.close()


def _offset(minutes: int) -> str:
    return "Z" if minutes == 0 else f"{'+' if minutes > 0 else '-'}" \
        f"{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _time(at: datetime, offset_min: int, digits: int) -> str:
    local = at + timedelta(minutes=offset_min)
    frac = f".{local.microsecond:06d}"[: digits + 1] if digits else ""
    return local.strftime("%Y-%m-%dT%H:%M:%S") + frac + _offset(offset_min)


good_time = st.builds(
    _time,
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(9899, 12, 30),
                 timezones=st.just(UTC)),
    st.integers(-18 * 60, 18 * 60), st.integers(0, 6))
bad_time = st.sampled_from([
    "2026-06-30T23:59:60Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-18:00", "1899-12-31T23:59:59Z", "2026-13-01T00:00:00Z",
    "2026-11-20T12:00:00", "2026-11-20T12:00:00+24:00", "2026-11-20", "",
])
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
               max_size=40)
ext_value = st.recursive(
    st.none() | st.booleans() | text
    | st.integers(-(2**53) + 1, 2**53 - 1),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8)

# A good event is (kind, time-or-None, ext); a bad one names its defect.
good = st.tuples(st.just("good"), st.sampled_from(["consent", "rights", "breach"]),
                 good_time, st.dictionaries(text, ext_value, max_size=3))
bad = st.tuples(st.just("bad"), st.sampled_from([
    "occurred", "data_time", "float", "big_int", "duplicate", "deep", "not_object",
    "signature", "unknown_field", "key_padding"]), bad_time)
admin = st.tuples(st.just("admin"), st.sampled_from(["register", "revoke"]),
                  st.integers(0, 1), st.integers(0, 2))
batch = st.lists(st.one_of(good, good, bad, admin), min_size=1, max_size=12)


class Fuzz:
    def __init__(self, api: Api) -> None:
        self.api, self.world = api, api.world
        self.admin_key = load_private_key(self.world.ledger.cfg.admin_key_file(CONTROLLER))
        self.ids = [str(uuid.uuid4()) for _ in range(3)]  # admin ids that collide
        self.requests: set[str] = set()
        self.breaches: set[str] = set()

    def now(self) -> str:
        return format_rfc3339(self.world.clock.now())

    def good(self, kind: str, at: str, ext: dict[str, Any]) -> tuple[bytes, str | None]:
        n = uuid.uuid4().hex[:12]
        if kind == "consent":
            env = self.api.event(data={"purposes": ["p"], "method": "web",
                                       "notice_version": "v", "expires_at": at, "ext": ext})
        elif kind == "rights":
            env = self.api.event(type_="rights_request.received", data={
                "request_id": f"r{n}", "right": "access", "received_at": at})
        else:
            env = self.api.event(type_="breach.aware", subject=None, data={
                "breach_id": f"b{n}", "aware_at": at})
        return orjson.dumps(env), (kind, env["data"].get("request_id")
                                   or env["data"].get("breach_id"))  # type: ignore[return-value]

    def bad(self, defect: str, at: str) -> bytes:
        data: dict[str, Any] = {"purposes": ["p"], "method": "web", "notice_version": "v"}
        if defect == "occurred":
            return orjson.dumps(self.api.event(occurred_at=at))
        if defect == "data_time":
            return orjson.dumps(self.api.event(data={**data, "expires_at": at}))
        if defect == "float":
            return orjson.dumps(self.api.event(data={**data, "ext": {"x": 1.5}}))
        if defect == "big_int":
            raw = orjson.dumps(self.api.event(data={**data, "ext": {"x": 7}}))
            return raw.replace(b'"x":7', b'"x":' + str(2**70).encode())
        if defect == "duplicate":
            raw = orjson.dumps(self.api.event())
            return raw.replace(b'"method":"web_form"', b'"method":"web_form","method":"x"')
        if defect == "deep":
            raw = orjson.dumps(self.api.event(data={**data, "ext": {"d": 0}}))
            return raw.replace(b'"d":0', b'"d":' + b"[" * 300 + b"]" * 300)
        if defect == "not_object":
            return b'"not an envelope"'
        if defect == "signature":
            env = self.api.event()
            env["data"]["method"] = "tampered"
            return orjson.dumps(env)
        if defect == "unknown_field":
            return orjson.dumps(self.api.event(data={**data, "colour": "red"}))
        env = self.admin_event("producer.registered", {
            "producer_id": "fz", "public_key": public_key_text(FZ_KEYS[0]) + "=",
            "types": ["*"]})
        return orjson.dumps(env)

    def admin_event(self, type_: str, data: dict[str, Any],
                    event_id: str | None = None) -> dict[str, Any]:
        partial = {"type": type_, "controller": CONTROLLER, "data": data,
                   "occurred_at": self.now()}
        if event_id:
            partial["event_id"] = event_id
        return complete(partial, self.admin_key, ADMIN)

    def admin(self, action: str, key_no: int, id_no: int) -> bytes:
        eid = self.ids[id_no] if id_no < len(self.ids) - 1 else None
        if action == "register":
            env = self.admin_event("producer.registered", {
                "producer_id": "fz", "public_key": public_key_text(FZ_KEYS[key_no]),
                "types": ["*"]}, eid)
        else:
            env = self.admin_event("producer.revoked", {
                "producer_id": "fz", "revoked_at": self.now()}, eid)
        return orjson.dumps(env)


def test_post_events_fuzz_then_verify_and_project(fuzz_api: Api) -> None:
    """Generated batches and single envelopes through ``POST /v1/events``: no 5xx, one
    answer per event, every good event accepted; then the log verifies and the
    projections hold every good request and breach (one ledger for both halves)."""
    fz_requests: set[str] = set()
    fz_breaches: set[str] = set()

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(plan=batch, single=st.booleans())
    def post(plan: list[tuple], single: bool) -> None:
        fz = Fuzz(fuzz_api)
        bodies: list[bytes] = []
        expect_good: list[Any] = []
        for step in plan:
            if step[0] == "good":
                raw, ref = fz.good(step[1], step[2], step[3])
                bodies.append(raw)
                expect_good.append(ref)
            elif step[0] == "bad":
                bodies.append(fz.bad(step[1], step[2]))
                expect_good.append(None)
            else:
                bodies.append(fz.admin(step[1], step[2], step[3]))
                expect_good.append("admin")
        who = "admin"  # admin events ride along; the admin key may write for the controller
        if single:
            bodies, expect_good = bodies[:1], expect_good[:1]
            r = fuzz_api.client.post("/v1/events", content=bodies[0],
                                     headers={**fuzz_api.auth(who),
                                              "content-type": "application/json"})
            assert r.status_code < 500, r.text
            results = [r.json()] if r.status_code in (200, 201, 409, 422) and isinstance(
                r.json(), dict) and "status" in r.json() else []
            if not results:
                assert r.status_code in (400, 422), r.text
                assert expect_good[0] is None or expect_good[0] == "admin"
                return
        else:
            r = fuzz_api.client.post("/v1/events", content=b"[" + b",".join(bodies) + b"]",
                                     headers={**fuzz_api.auth(who),
                                              "content-type": "application/json"})
            assert r.status_code == 200, r.text
            results = r.json()
        assert len(results) == len(bodies)
        for res, ref in zip(results, expect_good, strict=True):
            if ref is None:
                assert res["status"] == "rejected", res
            elif ref != "admin":
                assert res["status"] == "accepted", res  # no good event lost
                kind, ident = ref
                if kind == "rights":
                    fz_requests.add(ident)
                elif kind == "breach":
                    fz_breaches.add(ident)

    post()
    ledger = fuzz_api.world.ledger
    ledger.flush()
    report = verify_source(LogSource(ledger.log), [ledger.verifier_key], ledger.verifier)
    assert report.ok, report.problems[:3]
    assert fz_requests and fz_breaches, "the generated batches held good events"
    seen_requests: set[str] = set()
    cursor = None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = fuzz_api.get(f"{BASE}/rights-requests", params=params)
        assert page.status_code == 200, page.text
        seen_requests |= {i["request_id"] for i in page.json()["items"]}
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert fz_requests <= seen_requests
    breaches = fuzz_api.get(f"{BASE}/breaches", params={"limit": 1000})
    assert breaches.status_code == 200, breaches.text
    assert fz_breaches <= {b["breach_id"] for b in breaches.json()["items"]}
    for path in ("deadlines", "findings", "ropa"):
        assert fuzz_api.get(f"{BASE}/{path}").status_code == 200, path
