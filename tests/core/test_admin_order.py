"""Whatever ingest accepts, ``auditledger verify`` accepts (issue #14, item 1).

Administration events change the registry only once they are certain to be stored, in log
order: a rejected, duplicate or conflicting ``producer.registered`` / ``.revoked`` changes
nothing, in one batch or across batches. The property test drives the real ``Ingestor``
on the SQLite log with generated admin sequences and checks the log with
``verify_source``, then checks every answer against a model of who may sign.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.clock import format_rfc3339
from ledger.envelope import complete
from ledger.registry import ADMIN
from ledger.signing import generate_key, load_private_key, public_key_text
from ledger.verify import LogSource, verify_source
from tests.conftest import CONTROLLER, OTHER, World, make_world

KEYS = [generate_key() for _ in range(3)]  # candidate producer keys, reused for speed


def admin_key(world: World, controller: str = CONTROLLER) -> Ed25519PrivateKey:
    return load_private_key(world.ledger.cfg.admin_key_file(controller))


def admin_event(world: World, type_: str, data: dict[str, Any], event_id: str | None = None,
                controller: str = CONTROLLER, **fields: Any) -> dict[str, Any]:
    partial: dict[str, Any] = {"type": type_, "controller": controller, "data": data,
                               "occurred_at": format_rfc3339(world.clock.now()), **fields}
    if event_id:
        partial["event_id"] = event_id
    return complete(partial, admin_key(world, controller), ADMIN)


def register(world: World, pid: str, key: Ed25519PrivateKey, event_id: str | None = None,
             **data: Any) -> dict[str, Any]:
    return admin_event(world, "producer.registered", {
        "producer_id": pid, "public_key": public_key_text(key), "types": ["*"], **data},
        event_id)


def revoke(world: World, pid: str, event_id: str | None = None) -> dict[str, Any]:
    return admin_event(world, "producer.revoked", {
        "producer_id": pid, "revoked_at": format_rfc3339(world.clock.now())}, event_id)


def verifies(world: World) -> bool:
    world.ledger.flush()
    report = verify_source(LogSource(world.ledger.log), [world.ledger.verifier_key],
                           world.ledger.verifier)
    assert report.ok, report.problems[:3]
    return True


def statuses(world: World, batch: list[Any]) -> list[tuple[str, str | None]]:
    return [(r.status, r.code) for r in world.ledger.submit(batch)]


def test_a_conflicting_duplicate_registration_does_not_change_the_key(world: World) -> None:
    eid = str(uuid.uuid4())
    first, second = generate_key(), generate_key()
    got = statuses(world, [register(world, "web", first, eid),
                           register(world, "web", second, eid)])
    assert got == [("accepted", None), ("rejected", "event_id_conflict")]
    by_second = world.event(producer="web", key=second)
    by_first = world.event(producer="web", key=first)
    assert statuses(world, [by_second, by_first]) == [
        ("rejected", "bad_signature"), ("accepted", None)]
    assert verifies(world)


def test_a_duplicate_registration_does_not_undo_a_revocation(world: World) -> None:
    eid = str(uuid.uuid4())
    key = generate_key()
    reg = register(world, "web", key, eid)
    got = statuses(world, [reg, revoke(world, "web"), reg])
    assert got == [("accepted", None), ("accepted", None), ("duplicate", None)]
    world.clock.advance(timedelta(seconds=1))
    assert statuses(world, [world.event(producer="web", key=key)]) == [
        ("rejected", "producer_revoked")]
    # The same across batches (the duplicate now found in the log).
    assert statuses(world, [reg])[0][0] == "duplicate"
    assert statuses(world, [world.event(producer="web", key=key)]) == [
        ("rejected", "producer_revoked")]
    assert verifies(world)


def test_a_badly_signed_earlier_copy_does_not_count(world: World) -> None:
    """An earlier event with the same id that fails its own checks does not make a later
    good admin event a conflict: the good one is stored, and applied."""
    eid = str(uuid.uuid4())
    key = generate_key()
    forged = complete({"type": "consent.given", "controller": CONTROLLER, "event_id": eid,
                       "subject": world.event()["subject"],
                       "data": {"purposes": ["x"], "method": "m", "notice_version": "v"}},
                      generate_key(), "crm", world.clock)
    got = statuses(world, [forged, register(world, "web", key, eid),
                           world.event(producer="web", key=key)])
    assert got == [("rejected", "bad_signature"), ("accepted", None), ("accepted", None)]
    assert verifies(world)


def test_a_regular_event_first_with_the_id_keeps_the_admin_event_out(world: World) -> None:
    ev = world.event()
    key = generate_key()
    got = statuses(world, [ev, register(world, "web", key, ev["event_id"]),
                           world.event(producer="web", key=key)])
    assert got == [("accepted", None), ("rejected", "event_id_conflict"),
                   ("rejected", "unknown_producer")]
    assert verifies(world)


# -- the property: generated admin sequences, in batches, on the SQLite log ---------------

# Few producers, keys and ids, so that collisions (the interesting cases) are common.
PIDS = ("web", "web", "hr")
step = st.one_of(
    st.tuples(st.just("register"), st.sampled_from(PIDS), st.integers(0, 1),
              st.integers(0, 1), st.booleans()),
    st.tuples(st.just("revoke"), st.sampled_from(PIDS), st.integers(0, 1)),
    st.tuples(st.just("event"), st.sampled_from(PIDS), st.integers(0, 1),
              st.booleans()),
    st.tuples(st.just("event"), st.sampled_from(PIDS), st.integers(0, 1),
              st.booleans()),
    st.tuples(st.just("replay"), st.integers(0, 40)),  # an earlier envelope, again
    st.tuples(st.just("tick"),),
)
batches = st.lists(st.lists(step, min_size=1, max_size=10), min_size=1, max_size=4)


class Model:
    """Who may sign what, replayed from the answers ingest gave: the oracle."""

    def __init__(self) -> None:
        self.key: dict[str, tuple[int, Any]] = {}  # pid -> (key number, revoked_at)

    def apply(self, env: dict[str, Any], num: int | None) -> None:
        pid = env["data"]["producer_id"]
        if env["type"] == "producer.registered":
            self.key[pid] = (num, None)  # type: ignore[assignment]
        elif pid in self.key and self.key[pid][1] is None:
            self.key[pid] = (self.key[pid][0], env["data"]["revoked_at"])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(plan=batches)
def test_accepted_implies_verified(tmp_path_factory: Any, plan: list[list[tuple]]) -> None:
    world = make_world(Path(tmp_path_factory.mktemp("prop")))
    try:
        ids = [str(uuid.uuid4()) for _ in range(2)]  # a small pool, so ids collide
        sent: list[tuple[dict[str, Any], int | None]] = []
        model = Model()
        for batch_plan in plan:
            batch: list[tuple[dict[str, Any], int | None]] = []
            for s in batch_plan:
                if s[0] == "register":
                    _, pid, num, id_no, fresh = s
                    eid = None if fresh else ids[id_no]
                    batch.append((register(world, pid, KEYS[num], eid), num))
                elif s[0] == "revoke":
                    batch.append((revoke(world, s[1], ids[s[2]]), None))
                elif s[0] == "event":
                    _, pid, num, reuse = s
                    ev = world.event(producer=pid, key=KEYS[num],
                                     **({"event_id": ids[0]} if reuse else {}))
                    batch.append((ev, num))
                elif s[0] == "replay" and sent:
                    batch.append(sent[s[1] % len(sent)])
                elif s[0] == "tick":
                    world.clock.advance(timedelta(seconds=1))
            if not batch:
                continue
            results = world.ledger.submit([env for env, _ in batch])
            assert len(results) == len(batch)
            for (env, num), res in zip(batch, results, strict=True):
                if env["type"].startswith("producer.") and res.status == "accepted":
                    model.apply(env, num)
                elif not env["type"].startswith("producer.") and res.status == "accepted":
                    pid = env["producer"]
                    # Accepted only if signed by the key the model says is in force.
                    assert pid in model.key and model.key[pid][0] == num, (env, model.key)
                    revoked_at = model.key[pid][1]
                    assert revoked_at is None or env["occurred_at"] < revoked_at
            sent.extend(batch)
        assert verifies(world)
    finally:
        world.ledger.close()


def test_other_controllers_admin_events_do_not_leak(world: World) -> None:
    """An admin event of one controller with the same event_id as another's is its own
    event (idempotency per controller) and changes only its own controller."""
    world.ledger.register_controller(OTHER, {"name": "Andet Firma ApS", "country": "DK",
                                             "timezone": "Europe/Copenhagen"})
    eid = str(uuid.uuid4())
    key = generate_key()
    mine = register(world, "web", key, eid)
    theirs = admin_event(world, "producer.registered", {
        "producer_id": "web", "public_key": public_key_text(generate_key()),
        "types": ["*"]}, eid, controller=OTHER)
    assert statuses(world, [mine, theirs]) == [("accepted", None), ("accepted", None)]
    assert statuses(world, [world.event(producer="web", key=key)]) == [("accepted", None)]
    assert statuses(world, [world.event(controller=OTHER, producer="web", key=key)]) == [
        ("rejected", "bad_signature")]
    assert verifies(world)
