"""Duplicate member names, nesting, non-canonical keys (issue #14, item 7): each a clean
rejection of the one event, in the bytes path (Kafka intake, ``emit``) and the dict path
(``POST /v1/events``)."""

from __future__ import annotations

import orjson
import pytest

from ledger.signing import generate_key, public_key_text
from ledger.strictjson import MAX_DEPTH, duplicate_name, split_array
from tests.conftest import World
from tests.core.test_admin_order import admin_event, register


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_duplicate_names_are_found_anywhere() -> None:
    assert duplicate_name(b'{"a":1,"a":1}') == "a"
    assert duplicate_name(b'{"a":{"b":[{"c":1,"c":2}]}}') == "c"
    assert duplicate_name('{"\\u0061":1,"a":2}') == "a"  # escapes do not hide it
    assert duplicate_name(b'{"a":1,"b":{"a":2}}') is None


def test_split_array_finds_the_elements() -> None:
    body = b' [ {"a":"],[{\\"}"}, [1,2] , 3 ]\n'
    assert split_array(body) == [b'{"a":"],[{\\"}"}', b"[1,2]", b"3"]
    assert split_array(b"[]") == [] and split_array(b"[1,]") is None
    assert split_array(b'{"a":1}') is None and split_array(b"[1] x") is None


def test_a_duplicate_name_is_malformed_json_and_costs_the_batch_nothing(
    world: World,
) -> None:
    ev = world.event()
    raw = orjson.dumps(ev)
    dup = raw.replace(b'"method":"web_form"', b'"method":"web_form","method":"phone"')
    assert dup != raw
    good = orjson.dumps(world.event())
    got = world.ledger.submit([dup, good])
    assert (got[0].status, got[0].code) == ("rejected", "malformed_json")
    assert '"method"' in (got[0].detail or "") and got[0].event_id == ev["event_id"]
    assert got[1].status == "accepted"


@pytest.mark.parametrize("depth", [MAX_DEPTH, 254, 256, 600, 1023, 1100])
def test_deep_nesting_is_a_schema_violation(world: World, depth: int) -> None:
    ev = world.event(data={"purposes": ["x"], "method": "m", "notice_version": "v",
                           "ext": {"deep": "PLACEHOLDER"}})
    raw = orjson.dumps(ev).replace(b'"PLACEHOLDER"', b"[" * depth + b"1" + b"]" * depth)
    as_dict = orjson.loads(raw) if depth < 1000 else None
    for item in (raw, as_dict):
        if item is None:
            continue
        (res,) = world.ledger.submit([item])
        assert (res.status, res.code) == ("rejected", "schema_violation"), res
        assert "nested deeper than" in (res.detail or "")


def test_nesting_within_the_bound_is_kept(world: World) -> None:
    ev = world.event(data={"purposes": ["x"], "method": "m", "notice_version": "v",
                           "ext": {"deep": nested(MAX_DEPTH - 4)}})
    assert world.ledger.submit([orjson.dumps(ev)])[0].status == "accepted"


KEY = public_key_text(generate_key())
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# The 43rd character carries 4 bits of the key and 2 unused bits; set one of those.
TRAILING = KEY[:42] + B64URL[B64URL.index(KEY[42]) + 1]
NON_CANONICAL = {
    "trailing bits": TRAILING,
    "padding": KEY + "=",
    "short": KEY[:40],
    "long": KEY + "AAAA",
    "bad alphabet": KEY[:42] + "+",
}


@pytest.mark.parametrize("name", sorted(NON_CANONICAL))
def test_non_canonical_producer_key(world: World, name: str) -> None:
    key = NON_CANONICAL[name]
    env = register(world, "web", generate_key())
    env = admin_event(world, "producer.registered",
                      {**env["data"], "public_key": key})
    (res,) = world.ledger.submit([env])
    assert (res.status, res.code) == ("rejected", "schema_violation"), (key, res)


def test_trailing_bits_set_is_refused_for_controller_keys_too(world: World) -> None:
    flipped = TRAILING
    from ledger.clock import format_rfc3339
    from ledger.envelope import complete
    from ledger.registry import ADMIN

    env = complete({"type": "controller.registered", "controller": "SE-5560000000",
                    "occurred_at": format_rfc3339(world.clock.now()),
                    "data": {"name": "X AB", "country": "SE", "timezone": "Europe/Stockholm",
                             "admin_public_key": flipped}}, generate_key(), ADMIN)
    (res,) = world.ledger.submit([env])
    assert (res.status, res.code) == ("rejected", "schema_violation"), res


def test_both_paths_of_the_duplicate_check(world: World) -> None:
    """Compact orjson bytes take the fast path (re-serialised byte for byte); indented or
    differently escaped bytes take the scanner; both find a duplicate and pass the rest."""
    ev = world.event()
    compact = orjson.dumps(ev)
    assert duplicate_name(compact, orjson.loads(compact)) is None
    pretty = orjson.dumps(ev, option=orjson.OPT_INDENT_2)
    escaped = compact.replace(b'"method"', b'"\\u006dethod"')
    for raw in (pretty, escaped):
        assert duplicate_name(raw, orjson.loads(raw)) is None
    dup = compact.replace(b'"method":"web_form"', b'"method":"web_form","method":"web_form"')
    assert duplicate_name(dup, orjson.loads(dup)) == "method"
    sneaky = compact.replace(b'"method":"web_form"',
                             b'"method":"web_form","\\u006dethod":"web_form"')
    assert duplicate_name(sneaky, orjson.loads(sneaky)) == "method"
    got = world.ledger.submit([pretty, escaped, dup])
    assert [r.status for r in got[:2]] == ["accepted", "duplicate"]
    assert (got[2].status, got[2].code) == ("rejected", "malformed_json")
