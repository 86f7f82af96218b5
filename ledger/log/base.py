"""The seam between the ledger and its storage.

Contract every backend MUST keep (``tests/log_contract.py`` checks it on each backend):
- ``append`` returns only after every event and checkpoint it wrote is durable; a crash
  before it returns may lose the whole batch but never part of it.
- Leaf indexes are dense per controller (0, 1, 2, …) in append order. They MUST NOT be
  derived from storage positions such as Kafka offsets, which have gaps.
- ``(controller, event_id)`` is unique: idempotency is per controller, so two tenants may
  use the same ``event_id`` for two different events.
- Stored ``body`` bytes are exactly the leaf preimage: JCS of the envelope with ``sig``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ledger.encoding import b64
from ledger.merkle import NodeGetter


@dataclass(frozen=True, slots=True)
class Prepared:
    """A validated, signed envelope ready to append."""

    event_id: str
    controller: str
    type: str
    producer: str
    occurred_at: str
    body: bytes  # canonical envelope including sig: the Merkle leaf preimage
    canon_hash: bytes  # SHA-256 of the signing input: the idempotency fingerprint


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int  # position in this ledger's total order (all controllers)
    controller: str
    index: int  # leaf index in the controller's Merkle log
    event_id: str
    type: str
    producer: str
    occurred_at: str
    received_at: str
    leaf_hash: bytes
    canon_hash: bytes
    body: bytes

    def envelope(self) -> dict[str, Any]:
        return orjson.loads(self.body)

    def record(self) -> dict[str, Any]:
        """The envelope plus what the ledger adds outside the signed part."""
        env = self.envelope()
        env["received_at"] = self.received_at
        env["index"] = self.index
        env["leaf_hash"] = b64(self.leaf_hash)
        return env


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    controller: str
    size: int
    root: bytes
    note: str  # the signed note text
    created_at: str


class StaleLog(Exception):
    """Another writer appended since the caller last looked; refresh and retry."""


class Log(Protocol):
    def append(
        self, batch: Sequence[Prepared], received_at: str, expect_seq: int | None = None
    ) -> list[StoredEvent]:
        """Append in order, durably. With ``expect_seq``, raise StaleLog if the log's last
        seq differs (another process wrote): the caller's registry view may be stale."""
        ...

    def last_seq(self) -> int: ...

    def lookup(self, controller: str, event_ids: Sequence[str]) -> dict[str, StoredEvent]:
        """The stored events of ``controller`` with these ids, by id (absent: unknown)."""
        ...

    def events(
        self,
        controller: str | None = None,
        after_seq: int = 0,
        types: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[StoredEvent]: ...

    def event_at(self, controller: str, index: int) -> StoredEvent | None: ...

    def controllers(self) -> list[str]: ...

    def size(self, controller: str) -> int: ...

    def node_getter(self, controller: str) -> NodeGetter: ...

    def checkpoints(self, controller: str) -> list[StoredCheckpoint]: ...

    def latest_checkpoint(self, controller: str) -> StoredCheckpoint | None: ...

    def checkpoint_due(self, force: bool = False) -> list[StoredCheckpoint]:
        """Sign checkpoints for trees that grew (every second while events arrive; always
        when ``force``). Appends also checkpoint at least every 1000 events."""
        ...

    def add_cosignatures(self, controller: str, size: int, lines: Sequence[str]) -> None:
        """Keep witnesses' cosignature lines for the checkpoint of ``size`` (verified by
        the caller, ``ledger.witness``); durable when this returns."""
        ...

    def cosignatures(self, controller: str, size: int) -> list[str]:
        """The cosignature lines kept for that checkpoint, each ending in a newline."""
        ...

    def latest_cosigned(self, controller: str) -> StoredCheckpoint | None:
        """The newest checkpoint with at least one cosignature."""
        ...

    def close(self) -> None: ...
