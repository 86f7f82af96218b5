"""The tampering suite: every kind of change to an evidence bundle (and to the log behind
it, as an auditor holding a checkpoint sees it) fails verification with its own problem
name. The table is the list in docs/verification.md ("Tampering suite").

Most mutations re-sign the manifest with the log key afterwards: the operator holds that
key, so a change must be caught by what the key cannot re-make — the producers'
signatures, the checkpoints signed earlier, the compact-range proof — not only by the
manifest's digests.
"""

from __future__ import annotations

import copy
import hashlib
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.bundle import BundleSource, build_bundle
from ledger.bundle_format import Manifest
from ledger.checkpoint import open_checkpoint, sign_note
from ledger.compact import Range
from ledger.encoding import b64, unb64
from ledger.merkle import MemoryNodes, consistency_proof, leaf_hash
from ledger.sequencer import CheckpointSigner, origin
from ledger.signing import generate_key, load_private_key
from tests.conftest import CONTROLLER, NOW, World, make_world

Parts = dict[str, bytes]


@dataclass
class Case:
    parts: Parts
    key: Any  # the log's private key
    vkey: str
    world: World
    notes: dict[int, str]  # every checkpoint of the log by size (what the auditor may hold)
    leaves: list[bytes]


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    world = make_world(tmp_path_factory.mktemp("tamper"))
    ledger = world.ledger
    ledger.flush()
    ids = []
    for _ in range(6):  # one batch and one timed checkpoint an hour
        world.clock.advance(timedelta(hours=1))
        batch = [world.event() for _ in range(5)]
        assert all(r.status == "accepted" for r in ledger.submit(batch))
        ledger.flush()
        ids.append([e["event_id"] for e in batch])
    start, end = NOW + timedelta(hours=2, minutes=30), NOW + timedelta(hours=4, minutes=30)
    period = {"from": "2026-11-20T14:30:00.000Z", "to": "2026-11-20T16:30:00.000Z"}
    report = {"period": period, "findings": [
        {"code": "example", "evidence": [ids[3][0], ids[5][1]]}]}  # in range, after it
    data = build_bundle(ledger, CONTROLLER, start, end, orjson.dumps(report), b"<html>",
                        cited=[ids[3][0], ids[5][1]])
    key = load_private_key(ledger.cfg.log_key_file)
    notes = {cp.size: cp.note for cp in ledger.log.checkpoints(CONTROLLER)}
    leaves = [ev.leaf_hash for ev in ledger.log.events(controller=CONTROLLER)]
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    return Case(parts, key, ledger.verifier_key, world, notes, leaves)


# -- helpers ------------------------------------------------------------------------------


def zipped(parts: Parts, extra: list[tuple[str, bytes]] = ()) -> bytes:  # type: ignore[assignment]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in [*parts.items(), *extra]:
            zf.writestr(name, data)
    return buf.getvalue()


def manifest(parts: Parts) -> Manifest:
    note = parts["manifest.note"].decode()
    return Manifest.parse(note[: note.rfind("\n\n") + 1])


def resign(parts: Parts, key: Any, man: Manifest | None = None) -> Parts:
    """What the operator can always do: list the members' new digests and sign again."""
    man = man or manifest(parts)
    man.digests = {n: hashlib.sha256(d).hexdigest() for n, d in parts.items()
                   if n != "manifest.note"}
    out = dict(parts)
    out["manifest.note"] = sign_note("".join(x + "\n" for x in man.lines()), "auditledger",
                                     key).encode()
    return out


def rows(parts: Parts, name: str) -> list[Any]:
    return [orjson.loads(line) for line in parts[name].splitlines()]


def put(parts: Parts, name: str, docs: list[Any]) -> Parts:
    return {**parts, name: b"".join(orjson.dumps(d) + b"\n" for d in docs)}


def flip(data: bytes, at: float = 0.5) -> bytes:
    b = bytearray(data)
    b[int(len(b) * at)] ^= 0x01
    return bytes(b)


def other_hash(h: str) -> str:
    return b64(hashlib.sha256(unb64(h)).digest())


def verify(case: Case, data: bytes, held: list[str] = ()) -> set[str]:  # type: ignore[assignment]
    source = BundleSource(data)
    report = source.verify_report([case.vkey], held=held)
    return {p.problem for p in report.problems}


def edit_events(c: Case, fn: Callable[[list[Any]], list[Any]], name: str = "events.jsonl"
                ) -> bytes:
    return zipped(resign(put(c.parts, name, fn(rows(c.parts, name))), c.key))


def edit_json(c: Case, name: str, fn: Callable[[Any], Any]) -> bytes:
    doc = orjson.loads(c.parts[name])
    return zipped(resign({**c.parts, name: orjson.dumps(fn(doc))}, c.key))


def edit_manifest(c: Case, fn: Callable[[Manifest], None]) -> bytes:
    man = manifest(c.parts)
    fn(man)
    return zipped(resign(c.parts, c.key, man))


def with_event(rows_: list[Any], i: int, fn: Callable[[dict[str, Any]], None]) -> list[Any]:
    out = copy.deepcopy(rows_)
    fn(out[i])
    return out


def signer(c: Case) -> CheckpointSigner:
    return CheckpointSigner(c.key)


def cp_time(note: str) -> str:
    return note.split("\n")[3][len("time "):]


# -- the full rebuild: drop an event, re-sequence, re-sign everything --------------------


def rebuilt_without(c: Case, drop: int, keep_history: bool = False) -> bytes:
    """The operator's best forgery: a log without leaf ``drop``, every checkpoint and the
    manifest signed again with the log key, the later checkpoints left out. With
    ``keep_history`` the checkpoints signed earlier stay in the bundle (as the format
    requires every checkpoint the ledger signed from the start edge to the newest)."""
    man = manifest(c.parts)
    events = [r for r in rows(c.parts, "events.jsonl") if r["index"] != drop]
    for r in events:
        if r["index"] > drop:
            r["index"] -= 1
    leaves = [h for i, h in enumerate(c.leaves[: man.end]) if i != drop]
    tree = MemoryNodes.from_leaves(leaves)
    new_end = man.end - 1
    rng = Range(0, 0, [])
    for h in leaves:
        rng.append(h)
    end_note = c.notes[man.end]
    note = signer(c).sign(CONTROLLER, new_end, rng.root(), cp_time(end_note))
    cps = [r for r in rows(c.parts, "checkpoints.jsonl") if r["size"] == man.start_size]
    cps.append({"size": new_end, "time": cp_time(end_note), "note": note})
    parts = put(c.parts, "events.jsonl", events)
    parts = put(parts, "checkpoints.jsonl", cps)
    parts = put(parts, "proofs/consistency.jsonl", [{
        "from": man.start_size, "to": new_end,
        "proof": [b64(h) for h in consistency_proof(tree, man.start_size, new_end)]}])
    parts["consistency.json"] = orjson.dumps({"from": new_end, "to": new_end, "proof": []})
    parts["proofs/range.json"] = orjson.dumps({
        "begin": man.begin, "end": new_end,
        "left": orjson.loads(c.parts["proofs/range.json"])["left"]})
    inc = rows(parts, "proofs/inclusion.jsonl")
    from ledger.merkle import inclusion_proof

    parts = put(parts, "proofs/inclusion.jsonl", [
        {**doc, "tree_size": new_end,
         "proof": [b64(h) for h in inclusion_proof(tree, doc["index"], new_end)]}
        for doc in inc])
    parts["cited.jsonl"] = parts["proofs/cited.jsonl"] = b""
    keep = inc
    report = orjson.loads(parts["report/accountability.json"])
    report["findings"] = []
    parts["report/accountability.json"] = orjson.dumps(report)
    listed = orjson.loads(parts["manifest.json"])
    listed.update(range_events=len(events), context_events=len(keep), cited_events=0,
                  events=len(events) + len(keep), period_events=listed["period_events"] - 1)
    parts["manifest.json"] = orjson.dumps(listed)
    man.end = man.end_size = man.latest_size = new_end
    if keep_history:
        old = manifest(c.parts)
        earlier = [r for r in rows(c.parts, "checkpoints.jsonl")
                   if r["size"] not in (old.start_size, old.end_size)]
        parts = put(parts, "checkpoints.jsonl", sorted(
            rows(parts, "checkpoints.jsonl") + earlier, key=lambda r: r["size"]))
        man.latest_size = old.latest_size
    return zipped(resign(parts, c.key, man))


def test_the_untouched_bundle_verifies(case: Case) -> None:
    assert verify(case, zipped(case.parts)) == set()
    man = manifest(case.parts)
    assert 0 < man.begin < man.end < man.latest_size  # a period inside the log
    assert rows(case.parts, "context.jsonl")  # admin events before it, one cited after


def test_a_full_rebuild_passes_offline_and_fails_against_what_the_auditor_holds(
        case: Case) -> None:
    """The limit of a bundle alone (docs/verification.md, "Trust"): the operator's rebuild
    verifies offline; a checkpoint held from before catches it."""
    man = manifest(case.parts)
    forged = rebuilt_without(case, man.begin + 3)
    assert verify(case, forged) == set()
    assert "rolled_back" in verify(case, forged, [case.notes[man.latest_size]])
    inside = max(s for s in case.notes if man.begin + 3 < s < man.end)
    assert "held_checkpoint_mismatch" in verify(case, forged, [case.notes[inside]])


# -- the table ----------------------------------------------------------------------------


def _drop_cited(c: Case) -> bytes:
    parts = {**c.parts, "cited.jsonl": b"", "proofs/cited.jsonl": b""}
    listed = orjson.loads(parts["manifest.json"])
    assert listed["cited_events"] == 1
    parts["manifest.json"] = orjson.dumps({**listed, "cited_events": 0})
    return zipped(resign(parts, c.key))


def _signed_by_another_key(c: Case) -> bytes:
    return zipped(resign(c.parts, generate_key()))


def _foreign_event(c: Case) -> bytes:
    man = manifest(c.parts)
    env = c.world.event()
    body = orjson.dumps(env)
    rec = {"index": man.end, "event_id": env["event_id"], "received_at": "2026-11-20T18:00:00.000Z",
           "leaf_hash": b64(leaf_hash(body)), "event": env}
    return edit_events(c, lambda r: [*r, rec])


def _fork_end(c: Case) -> bytes:
    man = manifest(c.parts)
    note = signer(c).sign(CONTROLLER, man.end, bytes(32), cp_time(c.notes[man.end]))
    cps = rows(c.parts, "checkpoints.jsonl")
    for r in cps:
        if r["size"] == man.end:
            r["note"] = note
    return zipped(resign(put(c.parts, "checkpoints.jsonl", cps), c.key))


def _drop_checkpoint(c: Case, which: str) -> bytes:
    man = manifest(c.parts)
    size = {"end": man.end_size, "start": man.start_size}[which]
    cps = [r for r in rows(c.parts, "checkpoints.jsonl") if r["size"] != size]
    return zipped(resign(put(c.parts, "checkpoints.jsonl", cps), c.key))


def _untimed_start(c: Case) -> bytes:
    man = manifest(c.parts)
    cps = rows(c.parts, "checkpoints.jsonl")
    root = open_checkpoint(c.notes[man.start_size], [c.vkey]).root
    for r in cps:
        if r["size"] == man.start_size:
            r["note"], r["time"] = signer(c).sign(CONTROLLER, man.start_size, root), None
    return zipped(resign(put(c.parts, "checkpoints.jsonl", cps), c.key))


def _shift_time(c: Case, size_role: str, delta: timedelta) -> bytes:
    """Re-sign a checkpoint (same size and root) with another time."""
    from ledger.clock import format_rfc3339, parse_rfc3339

    man = manifest(c.parts)
    size = man.start_size if size_role == "start" else man.end_size
    cps = rows(c.parts, "checkpoints.jsonl")
    root = open_checkpoint(c.notes[size], [c.vkey]).root
    for r in cps:
        if r["size"] == size:
            at = format_rfc3339(parse_rfc3339(r["time"]) + delta)
            r["note"], r["time"] = signer(c).sign(CONTROLLER, size, root, at), at
    return zipped(resign(put(c.parts, "checkpoints.jsonl", cps), c.key))


def _shorten(c: Case) -> bytes:
    """End the range at an earlier checkpoint (inside the period), keeping the label."""
    man = manifest(c.parts)
    sizes = sorted(r["size"] for r in rows(c.parts, "checkpoints.jsonl"))
    new_end = max(s for s in sizes if man.begin < s < man.end)
    tree = MemoryNodes.from_leaves(c.leaves)
    events = [r for r in rows(c.parts, "events.jsonl") if r["index"] < new_end]
    parts = put(c.parts, "events.jsonl", events)
    parts["proofs/range.json"] = orjson.dumps({
        "begin": man.begin, "end": new_end,
        "left": orjson.loads(c.parts["proofs/range.json"])["left"]})
    parts["consistency.json"] = orjson.dumps({"from": new_end, "to": man.latest_size, "proof": [
        b64(h) for h in consistency_proof(tree, new_end, man.latest_size)]})
    listed = orjson.loads(parts["manifest.json"])
    drop = listed["range_events"] - len(events)
    listed.update(range_events=len(events), events=listed["events"] - drop)
    listed["period_events"] = sum(1 for r in events if "2026-11-20T14:30" <= r["event"][
        "occurred_at"] < "2026-11-20T16:30")
    parts["manifest.json"] = orjson.dumps(listed)
    report = orjson.loads(parts["report/accountability.json"])
    parts["report/accountability.json"] = orjson.dumps({**report, "findings": []})
    man.end = man.end_size = new_end
    return zipped(resign(parts, c.key, man))


def _period(man: Manifest, f: str | None, t: str | None) -> None:
    man.period_from, man.period_to = f, t


def _report(c: Case, fn: Callable[[dict[str, Any]], None]) -> bytes:
    doc = orjson.loads(c.parts["report/accountability.json"])
    fn(doc)
    return zipped(resign({**c.parts, "report/accountability.json": orjson.dumps(doc)}, c.key))


def _swap_first(doc: dict[str, Any], key: str = "proof") -> dict[str, Any]:
    doc[key][0] = other_hash(doc[key][0])
    return doc


def _data(r: dict[str, Any]) -> None:
    r["event"]["data"]["method"] = "paper"


def _data_and_leaf(r: dict[str, Any]) -> None:
    """The record made self-consistent: only the tree's signed root can tell."""
    from ledger.canonical import canonical_bytes

    _data(r)
    r["leaf_hash"] = b64(leaf_hash(canonical_bytes(r["event"])))


TABLE: list[tuple[str, Callable[[Case], bytes], str]] = [
    ("flip a byte of events.jsonl", lambda c: zipped({**c.parts, "events.jsonl": flip(
        c.parts["events.jsonl"])}), "member_altered"),
    ("flip a byte of checkpoints.jsonl", lambda c: zipped({**c.parts, "checkpoints.jsonl": flip(
        c.parts["checkpoints.jsonl"], 0.3)}), "member_altered"),
    ("drop a member", lambda c: zipped({k: v for k, v in c.parts.items()
                                        if k != "proofs/range.json"}), "member_missing"),
    ("add a member", lambda c: zipped({**c.parts, "extra.txt": b"x"}), "member_unlisted"),
    ("two members of the same name", lambda c: zipped(c.parts, [(
        "events.jsonl", b"")]), "duplicate_member"),
    ("manifest unsigned", lambda c: zipped({**c.parts, "manifest.note": c.parts[
        "manifest.note"].split(b"\n\n")[0] + b"\n"}), "bundle_manifest"),
    ("re-signed with another key", _signed_by_another_key, "bundle_manifest"),
    ("event data changed", lambda c: edit_events(c, lambda r: with_event(r, 4, _data)),
     "bad_signature"),
    ("event data and leaf hash changed", lambda c: edit_events(c, lambda r: with_event(
        r, 4, _data_and_leaf)), "range_root_mismatch"),
    ("recorded leaf hash changed", lambda c: edit_events(c, lambda r: with_event(
        r, 2, lambda e: e.update(leaf_hash=other_hash(e["leaf_hash"])))), "leaf_hash_mismatch"),
    ("record's event id changed", lambda c: edit_events(c, lambda r: with_event(
        r, 2, lambda e: e.update(event_id="x"))), "event_id_mismatch"),
    ("event of another controller", lambda c: edit_events(c, lambda r: with_event(
        r, 2, lambda e: e["event"].update(controller="SE-5560000000"))), "invalid_event"),
    ("drop an event", lambda c: edit_events(c, lambda r: r[:3] + r[4:]), "missing_event"),
    ("drop the last event", lambda c: edit_events(c, lambda r: r[:-1]), "missing_event"),
    ("reorder two events", lambda c: edit_events(c, lambda r: [*r[:2], r[3], r[2], *r[4:]]),
     "event_out_of_order"),
    ("duplicate an event", lambda c: edit_events(c, lambda r: [*r[:3], r[2], *r[3:]]),
     "duplicate_index"),
    ("insert a foreign event", _foreign_event, "event_outside_range"),
    ("unreadable event line", lambda c: zipped(resign({**c.parts, "events.jsonl": c.parts[
        "events.jsonl"] + b"{not json\n"}, c.key)), "malformed_event"),
    ("received_at after the checkpoint", lambda c: edit_events(c, lambda r: with_event(
        r, 0, lambda e: e.update(received_at="2030-01-01T00:00:00.000Z"))),
     "received_after_checkpoint"),
    ("swap a range-proof hash", lambda c: edit_json(c, "proofs/range.json", lambda d:
                                                    _swap_first(d, "left")),
     "range_left_mismatch"),
    ("range proof for another range", lambda c: edit_json(c, "proofs/range.json", lambda d: {
        **d, "end": d["end"] - 1}), "range_mismatch"),
    ("swap a consistency-proof hash", lambda c: edit_events(c, lambda r: [
        _swap_first(r[0]), *r[1:]], "proofs/consistency.jsonl"), "checkpoint_fork"),
    ("swap a hash of the proof to the newest", lambda c: edit_json(
        c, "consistency.json", _swap_first), "latest_inconsistent"),
    ("swap an inclusion-proof hash", lambda c: edit_events(c, lambda r: [
        _swap_first(r[0]), *r[1:]], "proofs/inclusion.jsonl"), "inclusion_failed"),
    ("change a checkpoint's tree size", lambda c: edit_events(c, lambda r: with_event(
        r, 1, lambda e: e.update(size=e["size"] + 1)), "checkpoints.jsonl"), "bad_checkpoint"),
    ("change a checkpoint's root", lambda c: edit_events(c, lambda r: with_event(
        r, 1, lambda e: e.update(note=e["note"].replace(e["note"].split("\n")[2], b64(bytes(
            32))))), "checkpoints.jsonl"), "bad_checkpoint"),
    ("change a checkpoint's time field", lambda c: edit_events(c, lambda r: with_event(
        r, 1, lambda e: e.update(time="2026-11-20T12:00:00.000Z")), "checkpoints.jsonl"),
     "checkpoint_time_mismatch"),
    ("fork the end checkpoint (re-signed root)", _fork_end, "checkpoint_fork"),
    ("drop an event, re-sign the end edge, keep the earlier checkpoints", lambda c:
     rebuilt_without(c, manifest(c.parts).begin + 3, keep_history=True), "checkpoint_fork"),
    ("drop the end checkpoint", lambda c: _drop_checkpoint(c, "end"), "edge_missing"),
    ("untimed start edge", _untimed_start, "checkpoint_untimed"),
    ("checkpoint time going back", lambda c: _shift_time(c, "end", -timedelta(hours=5)),
     "checkpoint_time_order"),
    ("start edge after the period start", lambda c: _shift_time(c, "start", timedelta(
        minutes=40)), "period_mismatch"),
    ("shorten the range", _shorten, "period_mismatch"),
    ("claim an earlier period start", lambda c: edit_manifest(c, lambda m: _period(
        m, "2026-11-20T12:30:00.000Z", m.period_to)), "period_mismatch"),
    ("relabel a period as the whole log", lambda c: edit_manifest(c, lambda m: _period(
        m, None, None)), "not_whole_log"),
    ("manifest range not the edges", lambda c: edit_manifest(c, lambda m: setattr(
        m, "begin", m.begin + 1)), "range_mismatch"),
    ("drop a cited event with its proof", _drop_cited, "report_evidence_missing"),
    ("report of another period", lambda c: _report(c, lambda d: d.update(period={
        "from": None, "to": None})), "report_period_mismatch"),
    ("report cites an absent event", lambda c: _report(c, lambda d: d["findings"].append(
        {"evidence": ["00000000-0000-0000-0000-000000000000"]})), "report_evidence_missing"),
    ("counts in manifest.json changed", lambda c: edit_json(c, "manifest.json", lambda d: {
        **d, "period_events": d["period_events"] + 1}), "count_mismatch"),
    ("producer keys listed differently", lambda c: edit_json(c, "keys/producers.json",
                                                             lambda d: d[:1]),
     "producer_keys_mismatch"),
]


@pytest.mark.parametrize(("name", "mutate", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_each_mutation_is_named(case: Case, name: str, mutate: Callable[[Case], bytes],
                                expected: str) -> None:
    problems = verify(case, mutate(case))
    assert expected in problems, (name, problems)


def test_log_rolled_back_or_forked_against_a_held_checkpoint(case: Case) -> None:
    """The log behind the bundle, as an auditor who kept a checkpoint sees it."""
    man = manifest(case.parts)
    data = zipped(case.parts)
    # rolled back: the auditor holds a checkpoint newer than anything the bundle knows
    tree = MemoryNodes.from_leaves([*case.leaves, leaf_hash(b"later")])
    from ledger.merkle import root_from_getter

    newer = signer(case).sign(CONTROLLER, tree.size, root_from_getter(tree, tree.size))
    assert "rolled_back" in verify(case, data, [newer])
    # forked: a checkpoint of the same size with another root (a split view)
    other = signer(case).sign(CONTROLLER, man.latest_size, bytes(32))
    assert "held_checkpoint_mismatch" in verify(case, data, [other])
    inside = max(s for s in case.notes if man.begin < s < man.end)
    fork_inside = signer(case).sign(CONTROLLER, inside, bytes(32))
    assert "held_checkpoint_mismatch" in verify(case, data, [fork_inside])
    # and what the auditor holds, when genuine, agrees
    assert verify(case, data, [case.notes[inside], case.notes[man.latest_size]]) == set()
    assert origin(CONTROLLER) in case.notes[inside]


def test_the_table_has_thirty_kinds_with_stable_names() -> None:
    assert len(TABLE) >= 30
    assert len({name for name, *_ in TABLE}) == len(TABLE)


def test_verify_dir_and_cli_name_the_problem(case: Case, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ledger.cli import app

    path = tmp_path / "t.zip"
    path.write_bytes(edit_events(case, lambda r: r[:3] + r[4:]))
    result = CliRunner().invoke(app, ["verify", str(path), "--log-key", case.vkey, "--json"])
    doc = orjson.loads(result.stdout)
    assert result.exit_code == 1 and not doc["ok"]
    assert "missing_event" in {p["problem"] for p in doc["problems"]}
    assert doc["warnings"] == []


def test_a_log_signed_before_checkpoint_times_still_gives_whole_log_bundles(
        tmp_path: Path) -> None:
    """Checkpoints without the ``time`` line (written before it existed) verify; they can
    be the end of a whole-log bundle, never the edge of a period."""
    import sqlite3

    world = make_world(tmp_path)
    world.ledger.submit([world.event() for _ in range(4)])
    world.ledger.flush()
    key = load_private_key(world.ledger.cfg.log_key_file)
    conn = sqlite3.connect(world.data_dir / "ledger.sqlite", isolation_level=None)
    for size, root in conn.execute("SELECT size, root FROM checkpoints").fetchall():
        conn.execute("UPDATE checkpoints SET note=? WHERE size=?",
                     (CheckpointSigner(key).sign(CONTROLLER, size, root), size))
    conn.close()
    world.ledger.close()
    from ledger.config import Config
    from ledger.service import Ledger

    ledger = Ledger(Config.load(world.data_dir), clock=world.clock, verifier_workers=0)
    try:
        whole = build_bundle(ledger, CONTROLLER)
        assert BundleSource(whole).verify_report([ledger.verifier_key]).ok
        period = build_bundle(ledger, CONTROLLER, NOW - timedelta(hours=1), NOW)
        problems = {p.problem for p in BundleSource(period).verify_report(
            [ledger.verifier_key]).problems}
        assert "checkpoint_untimed" in problems
    finally:
        ledger.close()
