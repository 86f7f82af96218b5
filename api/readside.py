"""The read side as the API sees it: the projections' store, runner and query functions.

Optional by design: when the ``projections`` package cannot be imported the API still
serves ingest, the log, proofs and bundles, and the read-model routes answer 503
``projections_unavailable``.
"""

from __future__ import annotations

import threading
from typing import Any

from ledger.clock import Clock
from ledger.service import Ledger


class ReadSide:
    def __init__(self, ledger: Ledger, clock: Clock, store: Any = None,
                 follow: bool = False) -> None:
        from projections import queries
        from projections.runner import LogSource, ProjectionRunner
        from projections.store import open_store

        self.ledger, self.clock, self.queries = ledger, clock, queries
        self.unknown = queries.UnknownControllerError
        self._own_store = store is None
        self.store = store if store is not None else open_store(str(ledger.cfg.readmodel_db))
        self.runner = ProjectionRunner(LogSource(ledger.log), self.store)
        self.follow = follow  # a background task keeps it current; else catch up on read
        self._lock = threading.Lock()

    def lag(self) -> int:
        return max(0, self.ledger.log.last_seq() - self.runner.position())

    def step(self) -> int:
        """Apply what the log has that the read models lack (one caller at a time)."""
        with self._lock:
            return self.runner.run_once()

    def catch_up(self) -> None:
        """Read-your-writes when no background runner follows the log."""
        if not self.follow and self.lag():
            self.step()

    def call(self, name: str, controller: str, **kw: Any) -> Any:
        """``projections.queries.<name>(store, controller, **kw)``; KeyError when the
        read models know nothing of ``controller``."""
        self.catch_up()
        fn = getattr(self.queries, name)
        try:
            return fn(self.store, controller, **kw)
        except self.unknown:
            raise KeyError(controller) from None

    def close(self) -> None:
        if self._own_store:
            self.store.close()


def open_read_side(ledger: Ledger, clock: Clock, follow: bool = False) -> ReadSide | None:
    try:
        return ReadSide(ledger, clock, follow=follow)
    except ImportError:
        return None
