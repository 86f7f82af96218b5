"""Offline verification of a whole log, with public keys only.

What is checked, per controller:
1. leaf indexes are dense from 0 and event ids unique — a removed or inserted row shows;
2. every stored body is canonical JCS, matches its schema, and its signature verifies with
   the key in force at that point of the log (replaying the administration events exactly
   as ingest did) — an altered event shows by name;
3. the recorded leaf hash equals the hash of the body;
4. every checkpoint note is signed by the pinned log key for this controller's origin and
   its root equals the root recomputed from the bodies — a reordered, removed or inserted
   event, or a forked checkpoint, shows;
5. consecutive checkpoints are consistent (RFC 9162 consistency proof from the recomputed
   tree, checked against both signed roots).

When a checkpoint's root does not match, the events to blame are found by comparing the
recomputed perfect subtrees with the ones the log stored at append time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from ledger.canonical import canonical_bytes
from ledger.checkpoint import NoteError, open_checkpoint
from ledger.clock import parse_rfc3339
from ledger.encoding import b64
from ledger.findings import LogEntry, Problem, Report, Source
from ledger.log.base import StoredCheckpoint
from ledger.merkle import (
    Frontier,
    MemoryNodes,
    ProofError,
    consistency_proof,
    leaf_hash,
    verify_consistency,
)
from ledger.registry import ADMIN_TYPES, Registry, RegistryError
from ledger.schemas import SchemaError, default_schemas
from ledger.sequencer import origin
from ledger.signing import DOMAIN
from ledger.verifier import Verifier


def verify_source(
    source: Source, log_keys: Sequence[str], verifier: Verifier | None = None,
    held: Sequence[str] = (),
) -> Report:
    own_check = getattr(source, "verify_report", None)
    if own_check is not None:
        # An evidence bundle is a stretch of a log: it checks its range by a compact-range
        # proof and its context by inclusion proofs (ledger.bundle_check.BundleSource).
        return own_check(log_keys, verifier, held)
    report = Report()
    own = verifier is None
    verifier = verifier or Verifier()
    try:
        for controller in source.controllers():
            _verify_controller(source, controller, log_keys, verifier, report)
    finally:
        if own:
            verifier.close()
    return report


def _chunks(it: Iterable[LogEntry], n: int) -> Iterator[list[LogEntry]]:
    chunk: list[LogEntry] = []
    for item in it:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _verify_controller(
    source: Source, controller: str, log_keys: Sequence[str], verifier: Verifier,
    report: Report,
) -> None:
    problems = report.problems

    def add(problem: str, entry: LogEntry | None = None, detail: str = "") -> None:
        problems.append(
            Problem(controller, problem, entry.event_id if entry else None,
                    entry.index if entry else None, detail)
        )

    schemas = default_schemas()
    registry = Registry()
    tree = MemoryNodes()
    seen_ids: set[str] = set()
    by_index: dict[int, LogEntry] = {}
    expected = 0
    for chunk in _chunks(sorted(source.entries(controller), key=lambda e: e.index), 2000):
        pending: list[tuple[LogEntry, bytes, bytes, str]] = []
        for entry in chunk:
            if entry.index != expected:
                if entry.index < expected:
                    add("duplicate_index", entry, f"index {entry.index} appears twice")
                    continue
                for missing in range(expected, entry.index):
                    add("missing_event", None, f"no event at index {missing}")
                    problems[-1].index = missing
                expected = entry.index
            expected += 1
            by_index[entry.index] = entry
            if entry.event_id in seen_ids:
                add("duplicate_event_id", entry, "event_id already used earlier in the log")
            seen_ids.add(entry.event_id)
            leaf = leaf_hash(entry.body)
            tree.append(leaf)
            if entry.leaf_hash is not None and entry.leaf_hash != leaf:
                add("leaf_hash_mismatch", entry, "recorded leaf hash is not the body's hash")
            try:
                env = orjson.loads(entry.body)
            except orjson.JSONDecodeError:
                add("malformed_event", entry, "stored body is not JSON")
                continue
            if not isinstance(env, dict) or canonical_bytes(env) != entry.body:
                add("not_canonical", entry, "stored body is not canonical JCS")
                continue
            if env.get("event_id") != entry.event_id:
                add("event_id_mismatch", entry, "body's event_id differs from the log's")
            try:
                schemas.check(env)
                if env["controller"] != controller:
                    raise SchemaError("schema_violation", "event of another controller")
                key = registry.signing_key(env, parse_rfc3339(env["occurred_at"]))
            except (SchemaError, RegistryError) as exc:
                add("invalid_event", entry, f"{exc.code}: {exc.detail}")
                continue
            unsigned = {k: v for k, v in env.items() if k != "sig"}
            if env["type"] in ADMIN_TYPES:
                # Later signatures depend on it: check it before it changes the registry.
                if verifier.verify([(key, DOMAIN + canonical_bytes(unsigned), env["sig"])])[0]:
                    registry.apply(env)
                else:
                    add("bad_signature", entry, "signature does not verify")
                continue
            pending.append((entry, key, DOMAIN + canonical_bytes(unsigned), env["sig"]))
        oks = verifier.verify([(k, m, s) for _, k, m, s in pending])
        for (entry, *_), ok in zip(pending, oks, strict=True):
            if not ok:
                add("bad_signature", entry, "signature does not verify with the producer key")

    _check_checkpoints(source, controller, log_keys, tree, by_index, add)
    size = tree.size
    report.controllers[controller] = {
        "size": size,
        "root": b64(Frontier.from_getter(tree, size).root()) if size else None,
        "checkpoints": len(source.checkpoints(controller)),
    }


def _check_checkpoints(source, controller, log_keys, tree, by_index, add) -> None:  # type: ignore[no-untyped-def]
    previous: tuple[int, bytes] | None = None
    blamed = False
    for cp in source.checkpoints(controller):
        try:
            opened = open_checkpoint(cp.note, log_keys, origin=origin(controller))
        except NoteError as exc:
            add("bad_checkpoint", None, f"checkpoint at size {cp.size}: {exc}")
            continue
        if opened.size > tree.size:
            add("checkpoint_beyond_log", None,
                f"checkpoint at size {opened.size} but the log has {tree.size} events")
            continue
        actual = Frontier.from_getter(tree, opened.size).root() if opened.size else None
        if opened.size and actual != opened.root:
            add("root_mismatch", None,
                f"signed checkpoint at size {opened.size} does not match the events")
            if not blamed:
                start = previous[0] if previous else 0
                # Everything after the last good checkpoint is suspect, up to the log's end.
                for entry in _blame(source, controller, tree, by_index, start, tree.size):
                    add("event_not_as_logged", entry,
                        f"leaves {entry.index // 2 * 2}-{entry.index // 2 * 2 + 1} differ from "
                        "what the log recorded at append time: this event or its neighbour "
                        "was altered, moved or replaced")
                blamed = True
        if previous and opened.size and not _consistent(
            source, controller, tree, previous, (opened.size, opened.root)
        ):
            add("checkpoint_fork", None,
                f"signed checkpoints at sizes {previous[0]} and {opened.size} cannot both be "
                "views of one append-only log")
        if opened.size:
            previous = (opened.size, opened.root)


def _consistent(source, controller, tree, old, new) -> bool:  # type: ignore[no-untyped-def]
    """Whether some consistency proof links the two signed roots. A proof is
    self-authenticating, so it may come from the recomputed tree or from the nodes the log
    stored at append time; if neither yields one, the checkpoints fork."""

    def stored(level: int, index: int) -> bytes:
        node = source.stored_node(controller, level, index)
        if node is None:
            raise KeyError((level, index))
        return node

    for getter in (tree, stored):
        try:
            proof = consistency_proof(getter, old[0], new[0])
            verify_consistency(old[0], new[0], old[1], new[1], proof)
            return True
        except (ProofError, KeyError):
            continue
    return False


def _blame(source, controller, tree, by_index, start, end) -> list[LogEntry]:  # type: ignore[no-untyped-def]
    """Events in [start, end) whose recomputed pair or leaf differs from the stored one."""
    out: list[LogEntry] = []
    for i in range(start, end):
        stored_leaf = source.stored_node(controller, 0, i)
        stored_pair = source.stored_node(controller, 1, i // 2) if i // 2 * 2 + 1 < end else None
        recomputed_pair = tree(1, i // 2) if stored_pair is not None else None
        if (stored_leaf is not None and stored_leaf != tree(0, i)) or (
            stored_pair is not None and stored_pair != recomputed_pair
        ):
            entry = by_index.get(i)
            if entry is not None:
                out.append(entry)
    if not out:
        first, last = by_index.get(start), by_index.get(end - 1)
        out = [e for e in (first, last) if e is not None]
    return out


class LogSource:
    """A live log (any backend) as a verification source."""

    def __init__(self, log: Any) -> None:
        self.log = log

    def controllers(self) -> list[str]:
        return self.log.controllers()

    def entries(self, controller: str) -> Iterable[LogEntry]:
        for ev in self.log.events(controller=controller):
            yield LogEntry(ev.index, ev.event_id, ev.body, ev.leaf_hash)

    def checkpoints(self, controller: str) -> list[StoredCheckpoint]:
        return self.log.checkpoints(controller)

    def stored_node(self, controller: str, level: int, index: int) -> bytes | None:
        try:
            return self.log.node_getter(controller)(level, index)
        except KeyError:
            return None


def open_target(target: Path) -> tuple[Any, list[str]]:
    """A data directory or an evidence bundle (zip, or unzipped: a directory holding
    ``manifest.note``), and the log keys it carries.

    An auditor should pin the log key with ``--log-key`` rather than trust the one found
    beside the data; the CLI does that when given one.
    """
    if target.is_dir() and not (target / "manifest.note").exists():
        from ledger.config import Config
        from ledger.service import Ledger

        cfg = Config.load(target)
        keys = [(cfg.keys_dir / "log.pub").read_text().strip()]
        ledger = Ledger(cfg, verifier_workers=0)
        source = LogSource(ledger.log)
        source.close = ledger.close  # type: ignore[attr-defined]
        return source, keys
    if target.is_file() or target.is_dir():
        from ledger.bundle_check import BundleSource

        bundle = BundleSource(target)
        return bundle, bundle.log_keys
    raise FileNotFoundError(f"{target}: no such data directory or bundle")
