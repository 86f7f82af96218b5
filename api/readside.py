"""The read side as the API sees it: the projections' store, runner and query functions.

Optional by design: when the ``projections`` package cannot be imported the API still
serves ingest, the log, proofs and bundles, and the read-model routes answer 503
``projections_unavailable``.

Two ways the read models are kept current: ``follow=True`` (``auditledger serve``) — a
worker process (``auditledger projections run --follow``) applies the log and records
how it is doing beside its positions in the store (``ProjectionRunner.report``); this
process only reads. ``follow=False`` — this process catches up before each read.
``status()`` reports either for ``/readyz``; ``ensure_caught_up()`` is what a route that
must not answer from a read side behind the log calls (answer 503 + ``Retry-After``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ledger.clock import Clock, parse_rfc3339
from ledger.service import Ledger

#: A worker whose last heartbeat is older than this is not alive (it writes one every
#: ``projections.runner.HEARTBEAT_SECONDS`` while it follows the log).
WORKER_STALE_SECONDS = 10.0
#: How long a request waits for the read side to reach the events it needs before it
#: answers 503 ``projections_catching_up``.
CATCH_UP_WAIT_SECONDS = 2.0
#: The ``Retry-After`` of that 503, in seconds.
RETRY_AFTER_SECONDS = 2


class NotCaughtUp(Exception):
    """The read side has not applied the events a request needs (yet)."""

    def __init__(self, controller: str, needed: int, position: int,
                 error: str | None = None) -> None:
        detail = (f"the read models have applied the log up to position {position}; the"
                  f" events of {controller} reach {needed}")
        if error:
            detail += f" (last projection error: {error})"
        super().__init__(detail)
        self.controller, self.needed, self.position = controller, needed, position


class ReadSide:
    def __init__(self, ledger: Ledger, clock: Clock, store: Any = None,
                 follow: bool = False) -> None:
        from projections import queries
        from projections.runner import STATUS_NAME, LogSource, ProjectionRunner
        from projections.store import open_store

        self.ledger, self.clock, self.queries = ledger, clock, queries
        self.unknown = queries.UnknownControllerError
        self._own_store = store is None
        self.store = store if store is not None else open_store(str(ledger.cfg.readmodel_db))
        self.runner = ProjectionRunner(LogSource(ledger.log), self.store)
        self._status_name = STATUS_NAME
        self.follow = follow  # a background task keeps it current; else catch up on read
        self._lock = threading.Lock()

    def lag(self) -> int:
        return max(0, self.ledger.log.last_seq() - self.runner.position())

    def step(self) -> int:
        """Apply what the log has that the read models lack (one caller at a time); a
        failure is recorded for ``status()`` and raised."""
        with self._lock:
            try:
                n = self.runner.run_once()
            except Exception as exc:
                self.runner.report(exc)
                raise
            self.runner.report()
            return n

    def catch_up(self) -> None:
        """Read-your-writes when no background runner follows the log."""
        if not self.follow and self.lag():
            self.step()

    def needed(self, controller: str) -> int:
        """The log position of ``controller``'s newest event (0 when it has none): what
        the read side must have applied for that controller's read models to be whole."""
        log = self.ledger.log
        size = log.size(controller)
        last = log.event_at(controller, size - 1) if size else None
        return last.seq if last is not None else 0

    def behind(self, controller: str) -> bool:
        return self.runner.position() < self.needed(controller)

    def ensure_caught_up(self, controller: str, wait: float | None = None) -> None:
        """Return once the read side has applied every event of ``controller`` the log
        held when called (waiting up to ``wait`` s, default ``CATCH_UP_WAIT_SECONDS``, for
        a worker, or catching up here without one); else raise ``NotCaughtUp``."""
        wait = CATCH_UP_WAIT_SECONDS if wait is None else wait
        need = self.needed(controller)
        if self.runner.position() >= need:
            return
        error = None
        try:
            if self.follow:
                self.store.wait(self.runner.source.source + "/0", need, timeout=wait)
            else:
                self.step()
        except Exception as exc:  # a timeout, or a run that failed: 503 either way
            error = None if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        position = self.runner.position()
        if position < need:
            if error is None:  # what the worker recorded, if its last run failed
                try:
                    doc = self.store.get_status(self._status_name) or {}
                except Exception:
                    doc = {}
                if doc.get("failing") and doc.get("last_error"):
                    error = doc["last_error"].get("error")
            raise NotCaughtUp(controller, need, position, error)

    def call(self, name: str, controller: str, **kw: Any) -> Any:
        """``projections.queries.<name>(store, controller, **kw)``; KeyError when the
        read models know nothing of ``controller``."""
        self.catch_up()
        fn = getattr(self.queries, name)
        try:
            return fn(self.store, controller, **kw)
        except self.unknown:
            raise KeyError(controller) from None

    def status(self) -> dict[str, Any]:
        """What ``/readyz`` reports of the read side; never raises. Keys:

        - ``lag``: events in the log not yet applied (int; None when the log or the
          store cannot be read);
        - ``position`` / ``log``: the applied position and the log's last position;
        - ``caught_up``: ``lag == 0``;
        - ``last_error``: None, or ``{"at", "error", "positions", "source"}`` — the last
          failed run of whoever applies the log (``source`` ``"worker"``: recorded by
          the worker process in the store, ``projection_status`` row ``runner``; or
          ``"read_side"``: the store or log could not be read just now), kept after the
          runner recovered (compare ``worker.failing``);
        - ``worker``: None when no runner has recorded itself, else ``{"pid",
          "heartbeat_at", "age_seconds", "alive", "failing", "positions"}``: ``alive`` =
          a heartbeat within ``WORKER_STALE_SECONDS`` (a following runner writes one
          every second; a read side without a worker, ``follow=False``, records one per
          catch-up, so ``alive`` is about the worker only when ``follow``);
          ``failing`` = its last run failed.
        - ``follow``: whether a worker process is expected to keep the read side current.
        """
        out: dict[str, Any] = {"lag": None, "position": None, "log": None,
                               "caught_up": False, "last_error": None, "worker": None,
                               "follow": self.follow}
        try:
            position, last = self.runner.position(), self.ledger.log.last_seq()
            out.update(position=position, log=last, lag=max(0, last - position))
            out["caught_up"] = out["lag"] == 0
            doc = self.store.get_status(self._status_name)
        except Exception as exc:
            out["last_error"] = {"at": None, "error": f"{type(exc).__name__}: {exc}"[:500],
                                 "positions": None, "source": "read_side"}
            return out
        if doc:
            age: float | None
            try:
                age = round(time.time() - parse_rfc3339(doc["heartbeat_at"]).timestamp(), 3)
            except (KeyError, TypeError, ValueError):
                age = None
            out["worker"] = {"pid": doc.get("pid"), "heartbeat_at": doc.get("heartbeat_at"),
                             "age_seconds": age,
                             "alive": age is not None and age <= WORKER_STALE_SECONDS,
                             "failing": bool(doc.get("failing")),
                             "positions": doc.get("positions")}
            if doc.get("last_error"):
                out["last_error"] = {**doc["last_error"], "source": "worker"}
        return out

    def close(self) -> None:
        if self._own_store:
            self.store.close()


def open_read_side(ledger: Ledger, clock: Clock, follow: bool = False) -> ReadSide | None:
    try:
        return ReadSide(ledger, clock, follow=follow)
    except ImportError:
        return None
