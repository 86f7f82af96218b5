"""Leaf indexes, Merkle hashes and checkpoint decisions, independent of storage.

The sequencer is the single writer's brain: a backend asks it for a ``Plan`` for a batch,
writes the whole plan in one atomic unit (a SQLite transaction, a Kafka transaction) and
only then calls ``install``. If the write fails, the plan is dropped and the in-memory
trees are untouched, so indexes never skip or repeat.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.checkpoint import TIME_EXTENSION, Checkpoint, sign_checkpoint, verifier_key
from ledger.clock import Clock, format_rfc3339
from ledger.log.base import Prepared, StoredCheckpoint
from ledger.merkle import Frontier, leaf_hash
from ledger.signing import public_key_bytes

CHECKPOINT_EVERY_EVENTS = 1000
CHECKPOINT_EVERY_SECONDS = 1.0


def origin(controller: str) -> str:
    return f"auditledger/{controller}"


class CheckpointSigner:
    """Signs checkpoints with the ledger's own log key (never a producer's)."""

    def __init__(self, key: Ed25519PrivateKey, name: str = "auditledger") -> None:
        self._key = key
        self.name = name
        self.verifier_key = verifier_key(name, public_key_bytes(key))

    def sign(self, controller: str, size: int, root: bytes, at: str | None = None) -> str:
        """The signed note; with ``at`` (the creation time, ``format_rfc3339``) it carries
        the ``time`` extension line that makes it usable as a period edge."""
        exts = (TIME_EXTENSION + at,) if at else ()
        return sign_checkpoint(Checkpoint(origin(controller), size, root, exts), self.name,
                               self._key)


@dataclass
class Tree:
    frontier: Frontier
    cp_size: int = 0
    cp_at: datetime | None = None


@dataclass
class Row:
    controller: str
    index: int
    event: Prepared
    leaf_hash: bytes


@dataclass
class Plan:
    rows: list[Row] = field(default_factory=list)
    nodes: list[tuple[str, int, int, bytes]] = field(default_factory=list)  # level >= 1
    checkpoints: list[StoredCheckpoint] = field(default_factory=list)
    trees: dict[str, Tree] = field(default_factory=dict)  # new state of touched trees
    first_seq: int = 0  # set by the backend: the storage position of rows[0]


class Sequencer:
    def __init__(
        self,
        signer: CheckpointSigner,
        clock: Clock,
        every_events: int = CHECKPOINT_EVERY_EVENTS,
        every_seconds: float = CHECKPOINT_EVERY_SECONDS,
    ) -> None:
        self.signer = signer
        self.clock = clock
        self.every_events = every_events
        self.every_seconds = every_seconds
        self.trees: dict[str, Tree] = {}

    def load(self, controller: str, tree: Tree) -> None:
        self.trees[controller] = tree

    def size(self, controller: str) -> int:
        tree = self.trees.get(controller)
        return tree.frontier.size if tree else 0

    def _tree(self, plan: Plan, controller: str) -> Tree:
        tree = plan.trees.get(controller)
        if tree is None:
            current = self.trees.get(controller)
            tree = copy.deepcopy(current) if current else Tree(Frontier())
            plan.trees[controller] = tree
        return tree

    def _checkpoint(self, plan: Plan, controller: str, tree: Tree) -> None:
        now = self.clock.now()
        size, root = tree.frontier.size, tree.frontier.root()
        at = format_rfc3339(now)
        plan.checkpoints.append(
            StoredCheckpoint(controller, size, root, self.signer.sign(controller, size, root, at),
                             at)
        )
        tree.cp_size, tree.cp_at = size, now

    def plan(self, batch: Sequence[Prepared]) -> Plan:
        """Indexes and hashes for ``batch``; a checkpoint whenever a tree has grown by
        ``every_events`` since the last one, so no stretch of the log goes unsigned for
        longer than that."""
        plan = Plan()
        rows, nodes, every = plan.rows, plan.nodes, self.every_events  # per event: hoisted
        for ev in batch:
            controller = ev.controller
            tree = plan.trees.get(controller) or self._tree(plan, controller)
            frontier = tree.frontier
            leaf = leaf_hash(ev.body)
            rows.append(Row(controller, frontier.size, ev, leaf))
            completed = frontier.append(leaf)
            if len(completed) > 1:  # [0] is the leaf itself (level 0), not stored here
                nodes.extend((controller, level, index, digest)
                             for level, index, digest in completed[1:])
            if frontier.size - tree.cp_size >= every:
                self._checkpoint(plan, controller, tree)
        now = self.clock.now()
        for controller, tree in plan.trees.items():
            if tree.frontier.size > tree.cp_size and self._aged(tree, now):
                self._checkpoint(plan, controller, tree)
        return plan

    def _aged(self, tree: Tree, now: datetime) -> bool:
        return tree.cp_at is None or (now - tree.cp_at).total_seconds() >= self.every_seconds

    def plan_due(self, force: bool = False,
                 only: Callable[[str], bool] | None = None) -> Plan:
        """Checkpoints for trees that grew and whose last checkpoint is older than
        ``every_seconds`` (or any that grew, when ``force``); with ``only``, just for the
        controllers it accepts (a sequencer of one Kafka partition signs its own)."""
        plan = Plan()
        now = self.clock.now()
        for controller, current in self.trees.items():
            if current.frontier.size == current.cp_size:
                continue
            if only is not None and not only(controller):
                continue
            if force or self._aged(current, now):
                self._checkpoint(plan, controller, self._tree(plan, controller))
        return plan

    def install(self, plan: Plan) -> None:
        self.trees.update(plan.trees)
