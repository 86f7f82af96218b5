"""``producer.registered.valid_from`` and the key history, at ingest and in verify
(issue #14, item 3)."""

from __future__ import annotations

from datetime import timedelta

from ledger.signing import generate_key
from tests.conftest import World
from tests.core.test_admin_order import register, revoke, statuses, verifies


def at(world: World, minutes: int) -> str:
    return (world.clock.now() + timedelta(minutes=minutes)).isoformat().replace(
        "+00:00", "Z")


def test_valid_from_is_enforced(world: World) -> None:
    key = generate_key()
    assert statuses(world, [register(world, "web", key, valid_from=at(world, 2))]) == [
        ("accepted", None)]
    early = world.event(producer="web", key=key, occurred_at=at(world, 1))
    (res,) = world.ledger.submit([early])
    assert (res.status, res.code) == ("rejected", "unknown_producer")
    assert "valid from" in (res.detail or "")
    on_time = world.event(producer="web", key=key, occurred_at=at(world, 2))
    assert statuses(world, [on_time]) == [("accepted", None)]
    assert verifies(world)


def test_a_planned_rotation_keeps_both_keys_for_their_periods(world: World) -> None:
    old, new = generate_key(), generate_key()
    statuses(world, [register(world, "web", old)])
    assert statuses(world, [register(world, "web", new, valid_from=at(world, 3))]) == [
        ("accepted", None)]
    got = statuses(world, [
        world.event(producer="web", key=old, occurred_at=at(world, 1)),  # old period
        world.event(producer="web", key=new, occurred_at=at(world, 1)),
        world.event(producer="web", key=new, occurred_at=at(world, 4)),  # new period
        world.event(producer="web", key=old, occurred_at=at(world, 4)),
    ])
    assert got == [("accepted", None), ("rejected", "bad_signature"),
                   ("accepted", None), ("rejected", "bad_signature")]
    assert verifies(world)


def test_registering_without_valid_from_retires_every_older_key(world: World) -> None:
    old, new = generate_key(), generate_key()
    statuses(world, [register(world, "web", old), register(world, "web", new)])
    got = statuses(world, [world.event(producer="web", key=old),
                           world.event(producer="web", key=new)])
    assert got == [("rejected", "bad_signature"), ("accepted", None)]
    assert verifies(world)


def test_revocation_stops_every_key_held_then(world: World) -> None:
    old, new = generate_key(), generate_key()
    statuses(world, [register(world, "web", old),
                     register(world, "web", new, valid_from=at(world, 3)),
                     revoke(world, "web")])
    got = statuses(world, [world.event(producer="web", key=new, occurred_at=at(world, 4)),
                           world.event(producer="web", key=old, occurred_at=at(world, 1))])
    assert got == [("rejected", "producer_revoked"), ("rejected", "producer_revoked")]
    # A stolen key cannot back-date past the lateness bound either.
    stolen = world.event(producer="web", key=old,
                         occurred_at=at(world, -60 * 24 * 4))
    assert statuses(world, [stolen]) == [("rejected", "clock_skew")]
    assert verifies(world)
