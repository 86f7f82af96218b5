"""What offline verification reads and what it returns: the ``Source`` seam, the
``LogEntry`` a source yields, and the ``Problem`` / ``Report`` it ends in.

They live apart from ``ledger.verify`` (the whole-log check) and ``ledger.bundle`` (the
evidence-bundle check) so each of those imports only this module, never the other:
``verify.open_target`` opens a bundle, and a bundle reports in these types, which made
the two import each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ledger.log.base import StoredCheckpoint


@dataclass(frozen=True)
class LogEntry:
    """One event as a source presents it: what the log claims, to be checked."""

    index: int
    event_id: str
    body: bytes
    leaf_hash: bytes | None  # as recorded by the log, if the source has it


class Source(Protocol):
    def controllers(self) -> list[str]: ...
    def entries(self, controller: str) -> Iterable[LogEntry]: ...
    def checkpoints(self, controller: str) -> list[StoredCheckpoint]: ...
    def stored_node(self, controller: str, level: int, index: int) -> bytes | None: ...


@dataclass
class Problem:
    controller: str
    problem: str
    event_id: str | None = None
    index: int | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "controller": self.controller,
            "event_id": self.event_id,
            "index": self.index,
            "problem": self.problem,
            "detail": self.detail,
        }


@dataclass
class Report:
    controllers: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "controllers": self.controllers,
            "problems": [p.to_dict() for p in self.problems],
        }
