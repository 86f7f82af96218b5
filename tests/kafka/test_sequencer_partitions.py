"""A sequencer per events partition (``kafka_sequencers: per-partition``).

Several ``serve`` processes share a ledger's partitions through the sequencer group;
each partition has one sequencer, transactional id ``<prefix>.sequencer.<partition>``.
Here: a zombie that lost its partition is fenced (in-process, two ``Ledger`` objects on
copies of one data directory), and ``kill -9`` / SIGTERM of a real ``serve`` moves its
partitions to the others within seconds with nothing acknowledged lost, no leaf index
skipped or used twice, and ``verify`` passing (real subprocesses)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.config import Config
from ledger.envelope import complete, pseudonym
from ledger.log.kafka import Fenced, NotSequencer, partition_for
from ledger.service import Ledger, init_data_dir
from ledger.signing import generate_key, public_key_text
from tests.conftest import CONTROLLER, cli_json
from tests.serving import Producer, Serve, log_events, make_data, verify_data

pytestmark = pytest.mark.kafka

# Two controllers, one per events partition of a two-partition ledger (sha256 mapping).
OTHER_PARTITION = "NO-912345678"


def test_controllers_map_to_partitions_by_sha256() -> None:
    """The mapping operators and docs rely on: sha256(controller)[:4] mod partitions."""
    assert partition_for(CONTROLLER, 2) == 1
    assert partition_for(OTHER_PARTITION, 2) == 0
    for c in (CONTROLLER, OTHER_PARTITION, "DK-26459400"):
        for n in (1, 3, 4, 12):
            digest = hashlib.sha256(c.encode()).digest()
            assert partition_for(c, n) == int.from_bytes(digest[:4], "big") % n


def consent_event(key: Any, who: str) -> dict[str, Any]:
    return complete({"type": "consent.given", "controller": CONTROLLER,
                     "subject": pseudonym(b"k" * 32, who),
                     "data": {"purposes": ["newsletter"], "method": "web_form",
                              "notice_version": "v1"}}, key, "crm")


def _copy_data(src: Path, dst: Path) -> Path:
    """What a second node of the same ledger needs: config, keys, API keys; its own
    index (rebuilt from the topics on open)."""
    dst.mkdir(parents=True)
    for name in ("config.json", "auth.sqlite"):
        shutil.copy2(src / name, dst / name)
    shutil.copytree(src / "keys", dst / "keys")
    return dst


def test_a_zombie_partition_sequencer_is_fenced(tmp_path: Path, kafka_bootstrap: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"zp-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AUDITLEDGER_KAFKA_TOPIC_PREFIX", prefix)
    cfg, _ = init_data_dir(tmp_path / "a", kafka_bootstrap, partitions=2,
                           sequencers="per-partition")
    a = Ledger(cfg)
    key = generate_key()
    assert a.register_controller(CONTROLLER, {"name": "B AS", "country": "NO",
                                              "timezone": "Europe/Oslo"}).status == "accepted"
    assert a.register_producer(CONTROLLER, "crm", public_key_text(key), ["*"]).status \
        == "accepted"
    p = partition_for(CONTROLLER, 2)
    assert a.log.txn_id(p) == f"{prefix}.sequencer.{p}"
    a.log.on_demand = False  # as in serve: only what the group assigns
    a.log.assign([p])
    first = a.submit([consent_event(key, f"u{i}@example.org") for i in range(5)])
    assert [r.index for r in first] == [2, 3, 4, 5, 6]

    b = Ledger(Config.load(_copy_data(tmp_path / "a", tmp_path / "b")))
    b.log.on_demand = False
    try:
        zombie = [consent_event(key, f"z{i}@example.org") for i in range(3)]
        # A is mid-transaction (its events planned, sent, not committed) when the group
        # gives the partition to B: B's init_transactions() fences A.
        with pytest.raises(Fenced), a.log.transaction(p):
            planned = a.submit(zombie)
            assert [r.index for r in planned] == [7, 8, 9]
            b.log.assign([p])
        assert p not in a.log.sequenced() and not a.log.may_write(p)
        with pytest.raises(NotSequencer):  # the zombie refuses instead of writing
            a.submit([consent_event(key, "late@example.org")])
        # Nothing of the zombie's transaction is visible; B continues at index 7.
        z_ids = [e["event_id"] for e in zombie]
        assert b.log.lookup(CONTROLLER, z_ids) == {}
        after = b.submit([consent_event(key, f"b{i}@example.org") for i in range(2)])
        assert [(r.status, r.index) for r in after] == [("accepted", 7), ("accepted", 8)]
        a.log.refresh()  # the zombie, as a reader, sees B's events, not its own
        assert a.log.lookup(CONTROLLER, z_ids) == {}
        assert a.log.size(CONTROLLER) == 9
    finally:
        b.close()
        a.close()
    report = cli_json("verify", str(tmp_path / "b"))
    assert report["ok"] and report["controllers"][CONTROLLER]["size"] == 9


def _sequencing(serve: Serve) -> list[int]:
    try:
        _, doc = serve.ready()
    except httpx.HTTPError:
        return []
    return (doc.get("sequencer") or {}).get("sequencing") or []


def _wait_sequencing(serves: list[Serve], want: list[list[int]] | None, timeout: float,
                     ) -> float:
    """Seconds until each serve sequences ``want[i]`` (None: the partitions are split
    between them, one each)."""
    t0 = time.monotonic()
    while True:
        got = [_sequencing(s) for s in serves]
        if (got == want if want is not None else
                sorted(p for g in got for p in g) == [0, 1] and all(len(g) == 1 for g in got)):
            return time.monotonic() - t0
        assert time.monotonic() - t0 < timeout, got
        time.sleep(0.1)


def _wait_acks(producers: list[Producer], n: int, timeout: float) -> None:
    target = [len(p.acked) + n for p in producers]
    deadline = time.monotonic() + timeout
    while any(len(p.acked) < t for p, t in zip(producers, target, strict=True)):
        assert time.monotonic() < deadline, [(len(p.acked), t) for p, t in
                                             zip(producers, target, strict=True)]
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_partitions_move_on_kill_9_and_on_stop(tmp_path: Path, kafka_bootstrap: str) -> None:
    env = {**os.environ, "AUDITLEDGER_KAFKA_TOPIC_PREFIX": f"mp-{uuid.uuid4().hex[:8]}"}
    world = make_data(tmp_path, env=env, kafka=kafka_bootstrap,
                      init_args=("--partitions", "2", "--sequencers", "per-partition"))
    data_a = world["data"]

    def run(*args: str) -> dict[str, Any]:
        return cli_json(*args, env=env)

    run("controller", "register", "--data", str(data_a), "--id", OTHER_PARTITION,
        "--name", "C AS", "--country", "NO", "--tz", "Europe/Oslo")
    pub = run("keygen", "--out", str(tmp_path / "crm2.pem"))["public_key"]
    run("producer", "register", "--data", str(data_a), "--controller", OTHER_PARTITION,
        "--id", "crm", "--public-key", pub, "--types", "consent.*")
    data_b = _copy_data(data_a, tmp_path / "b" / "data")
    args = ("--no-projections",)
    a = Serve(data_a, env=env, args=args).start(timeout=90)
    b = Serve(data_b, env=env, args=args).start(timeout=90)
    keys = {CONTROLLER: world["key"], OTHER_PARTITION: tmp_path / "crm2.pem"}
    # Each serve gets writes for both controllers: one it sequences, one it routes.
    producers = [Producer(s.url, world["admin"], keys[c], controller=c)
                 for s in (a, b) for c in (CONTROLLER, OTHER_PARTITION)]
    timings: dict[str, float] = {}
    c_replica: Serve | None = None
    try:
        _wait_sequencing([a, b], None, 60)
        # /readyz names the owner of each partition (the group's view, cached 1 s).
        deadline = time.monotonic() + 10
        while sorted((owners := b.ready()[1]["sequencer"]["owners"]).values()) != sorted(
                [a.url, b.url]):
            assert time.monotonic() < deadline, owners
            time.sleep(0.2)
        assert owners[str(_sequencing(a)[0])] == a.url
        for p in producers:
            p.run(size=20, resubmit=True, timeout=60)
        _wait_acks(producers, 60, 120)

        os.kill(a.pid, signal.SIGKILL)  # a crash: no leave-group, no flush
        timings["kill_9"] = _wait_sequencing([b], [[0, 1]], 30)
        _wait_acks(producers[2:], 100, 120)  # b now sequences both controllers

        a.start(timeout=90)  # back: the group splits the partitions again
        timings["rejoin"] = _wait_sequencing([a, b], None, 60)
        _wait_acks(producers, 60, 120)

        b.proc.send_signal(signal.SIGTERM)  # a clean stop: leaves the group at once
        timings["stop"] = _wait_sequencing([a], [[0, 1]], 30)
        _wait_acks(producers[:2], 100, 120)

        # An API replica sequences nothing and routes every write to its sequencer.
        c_replica = Serve(_copy_data(data_a, tmp_path / "c" / "data"), env=env,
                          args=(*args, "--no-sequence")).start(timeout=90)
        doc = c_replica.ready()[1]["sequencer"]
        assert doc["sequencing"] == [] and set(doc["owners"].values()) == {a.url}
        for c in (CONTROLLER, OTHER_PARTITION):
            routed = Producer(c_replica.url, world["admin"], keys[c], controller=c)
            res = routed.post(routed.batch(5))
            assert [r["status"] for r in res] == ["accepted"] * 5
            producers.append(routed)
    except BaseException:
        a.stop()  # on success it serves the checks below, then stops
        raise
    finally:
        for p in producers:
            p.stop()
        for s in (c_replica, b):
            if s is not None:
                s.stop()
    try:
        assert timings["kill_9"] < 20 and timings["stop"] < 10, timings
        sizes = {}
        for c in (CONTROLLER, OTHER_PARTITION):
            stored = log_events(a.url, world["admin"], c)
            ids = [e["event_id"] for e in stored]
            assert [e["index"] for e in stored] == list(range(len(stored))), \
                "a leaf index skipped or used twice"
            assert len(ids) == len(set(ids)), "an event twice in the log"
            index = {e["event_id"]: e["index"] for e in stored}
            for p in producers:
                if p.controller == c:
                    lost = p.acked - set(ids)
                    assert not lost, f"{len(lost)} acknowledged events of {c} lost"
                    assert all(index[e] == i for e, i in p.indexes.items()), \
                        "an acknowledgement named another index than the log's"
            sizes[c] = len(stored)
    finally:
        a.stop()
    print("failover seconds:", timings, "events:", sizes)
    for data in (data_a, data_b):
        report = verify_data(data, env=env)
        assert {c: report["controllers"][c]["size"] for c in sizes} == sizes


def test_init_refuses_an_unknown_sequencer_mode(tmp_path: Path) -> None:
    """A typo must not silently give a single-sequencer ledger: nothing is written."""
    from ledger.config import ConfigError

    with pytest.raises(ConfigError, match="per-partition"):
        init_data_dir(tmp_path / "d", "127.0.0.1:1", sequencers="per_partition")
    assert not (tmp_path / "d").exists()
    with pytest.raises(ConfigError, match="at least 1"):
        init_data_dir(tmp_path / "d", "127.0.0.1:1", partitions=0)
