"""The alert scheduler: plans alerts from the read models and emits them when due.

Two jobs, one thread:

- **plan** — for each controller whose projected event count changed (and every
  ``replan_interval`` seconds anyway, for findings that depend on "now"), ask
  ``projections.queries`` for its breaches, rights requests and findings, turn them into
  ``Planned`` alerts (``thresholds``) and make the outbox's pending alerts equal to that
  plan: new ones inserted, resolved cases' pending alerts cancelled.
- **emit** — at the due instant of the soonest pending alert, emit every alert due (one
  outbox transaction: state, ``seq``, deliveries) and wake the deliverer and SSE.

The thread sleeps until ``min(next due, next scan)``, so an alert already planned is
emitted within milliseconds of its threshold; a case projected after its threshold has
passed is emitted at the next scan (``scan_interval``, 0.5 s by default, or nine times
the last scan's duration when that is longer: ``SCAN_DUTY_FACTOR``).

``AlertService`` wires scheduler, deliverer and sinks for ``auditledger serve``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ledger.clock import Clock, parse_rfc3339
from projections import queries
from projections.alerts.delivery import Deliverer, RetryPolicy
from projections.alerts.outbox import Outbox
from projections.alerts.sinks import AlertSink
from projections.alerts.thresholds import (
    RESTATING,
    RIGHTS_CLOSED,
    Planned,
    plan_breach,
    plan_finding,
    plan_rights_request,
)
from projections.controllers import settings
from projections.store import ReadModelStore
from projections.unprocessable import UNREADABLE

log = logging.getLogger(__name__)

OUTBOX_FILE = "alerts.sqlite"
# A scan re-plans every controller whose facts changed: its cost grows with the findings
# of the controller, and while events stream in every scan has work. The next scan waits
# at least this many times the CPU time the last two scans took (the cheaper), so
# planning takes at most a tenth of a core from the process it shares (``serve``: the
# API's GIL) whatever the size of the read models; an alert planned late is still
# emitted at its scan.
SCAN_DUTY_FACTOR = 9.0


def outbox_path(data_dir: Path) -> Path:
    """The default outbox of a data directory."""
    return Path(data_dir) / OUTBOX_FILE


def kafka_sink(cfg: Any) -> AlertSink | None:
    """The Kafka alerts topic as a sink when the ledger (``ledger.config.Config``) is on
    Kafka, else None: every alert then also goes to ``auditledger.alerts.v1``."""
    if cfg.backend != "kafka" or not cfg.kafka_bootstrap:
        return None
    from projections.alerts.sinks.kafka import KafkaSink

    return KafkaSink(cfg.kafka_bootstrap, cfg.kafka_topic("alerts"))


#: The keys of a stored finding that ``queries.findings`` lists (and its alert is made of).
STORED_FINDING_KEYS = ("code", "controller", "severity", "detail", "evidence")


def plan_controller(store: ReadModelStore, controller: str, clock: Clock,
                    stored: list[dict[str, Any]] | None = None) -> list[Planned]:
    """Every alert a controller's current facts call for (pure but for the store read).
    ``stored``: plan these stored findings (``ReadModelStore.findings`` rows) instead of
    reading all of them (the scheduler's incremental scans).

    One case whose facts cannot be interpreted is left out (its ``unprocessable_event``
    finding is alerted instead); the controller's other cases are planned as usual."""
    now = clock.now()
    tz = settings(store.entity("controller", controller, controller)).timezone
    planned: list[Planned] = []
    open_cases: set[str] = set()
    for b in queries.breaches(store, controller, clock=clock):
        try:
            mine = plan_breach(controller, b)
        except UNREADABLE:
            log.warning("alerts: breach %s of %s not planned (unreadable)",
                        b.get("breach_id"), controller)
            continue
        planned += mine
        if mine:
            open_cases.add(f"breach:{b['breach_id']}")
    for r in queries.rights_requests(store, controller, clock=clock):
        try:
            planned += plan_rights_request(controller, r, tz)
        except UNREADABLE:
            log.warning("alerts: rights request %s of %s not planned (unreadable)",
                        r.get("request_id"), controller)
            continue
        if r["status"] not in RIGHTS_CLOSED:
            open_cases.add(f"request:{r['request_id']}")
    judged = queries.findings(store, controller, clock=clock, stored=stored is None)
    if stored is not None:
        judged += [{k: f[k] for k in STORED_FINDING_KEYS} for f in stored]
    for f in judged:
        planned += plan_finding(controller, f, now, open_cases)
    # The controller's zone travels with the alert, so a person-facing sink can say when
    # it is due in local time without reading the read models.
    return [replace(p, payload={**p.payload, "timezone": tz}) for p in planned]


class AlertScheduler:
    def __init__(self, store: ReadModelStore, outbox: Outbox, clock: Clock,
                 global_sinks: Sequence[str] = (), replan_interval: float = 30.0,
                 on_emit: Callable[[list[dict[str, Any]]], None] | None = None,
                 position: Callable[[], int] | None = None) -> None:
        self.store, self.outbox, self.clock = store, outbox, clock
        #: The store's applied position, when one position covers everything in it (one
        #: partition, commits in order: serve's worker): stored findings are then read
        #: incrementally, those of events ``<=`` the position read before being complete.
        self.position = position
        #: Per controller: (position read up to, ids of the stored findings' alerts).
        self._stored: dict[str, tuple[int, frozenset[str]]] = {}
        self.global_sinks = tuple(global_sinks)
        self.replan_interval = replan_interval
        self.on_emit = on_emit
        self._versions: dict[str, Any] = {}
        #: Per controller, the ids of its last plan: the outbox holds each of them, not
        #: cancelled (only this scheduler cancels, and only ids it no longer plans), so
        #: the next plan writes only the others. Dropped on a failure and at every
        #: ``replan_interval`` (a full write then), in case anything else changed a row.
        self._held: dict[str, frozenset[str]] = {}
        self._planned_at = float("-inf")
        self.emitted = 0
        self.lateness: list[float] = []  # seconds past due, last 1000 emissions
        #: Controllers whose last planning failed, with the error (retried every scan).
        self.failures: dict[str, str] = {}

    def plan(self, force: bool = False) -> int:
        """Re-plan controllers whose projected facts changed (all of them with ``force``
        or when ``replan_interval`` passed). Returns how many were planned."""
        stale = force or time.monotonic() - self._planned_at >= self.replan_interval
        if stale:
            self._planned_at = time.monotonic()
            self._held.clear()
            self._stored.clear()
        n = 0
        for c in self.store.controllers():
            version = (self.store.entity("stats", c, "events") or {}).get("total")
            if not stale and self._versions.get(c) == version:
                continue
            # One controller's failure is its own: the others are planned all the same,
            # and it is tried again at the next scan (its version is not recorded).
            # Both caches are dropped first and kept only after the outbox took the plan:
            # a failure anywhere means a full plan of this controller next time.
            held = self._held.pop(c, frozenset())
            before = self._stored.pop(c, None)
            try:
                planned, upto, stored_ids = self._plan_one(c, before)
            except Exception as exc:
                self.failures[c] = f"{type(exc).__name__}: {exc}"
                log.exception("alerts: planning controller %s failed", c)
                continue
            self.failures.pop(c, None)
            # Only what the last plan did not already write: a scan's outbox work is then
            # the controller's new cases and findings, not all of them. The stored
            # findings' alerts of earlier scans are planned still (kept, not cancelled).
            ids = frozenset(p.id for p in planned) | stored_ids
            self.outbox.plan(c, [p for p in planned if p.id not in held], self.clock.now(),
                             held=held & ids)
            self._held[c] = ids
            if upto is not None:
                self._stored[c] = (upto, stored_ids)
            self._versions[c] = version
            n += 1
        return n

    def _plan_one(self, c: str, before: tuple[int, frozenset[str]] | None
                  ) -> tuple[list[Planned], int | None, frozenset[str]]:
        """Plan controller ``c``: everything (no ``position``), or with only the stored
        findings of events after ``before``'s position. Returns (the plan, the position
        its stored findings reach or None, the ids of every stored finding's alert up to
        it: those of earlier scans stay planned)."""
        if self.position is None:
            return plan_controller(self.store, c, self.clock), None, frozenset()
        upto = self.position()  # before the rows: each row <= upto is committed with it
        after, old = before if before is not None and before[0] <= upto else (0, frozenset())
        rows = self.store.findings_between(c, after, upto)
        if any(f["code"] in RESTATING for f in rows):
            # Whether one is alerted depends on its case being open, which changes: such
            # a controller is planned in full every scan.
            return plan_controller(self.store, c, self.clock), None, frozenset()
        judged = plan_controller(self.store, c, self.clock, stored=[])
        tz = settings(self.store.entity("controller", c, c)).timezone
        now = self.clock.now()
        fresh = [replace(p, payload={**p.payload, "timezone": tz}) for f in rows
                 for p in plan_finding(c, {k: f[k] for k in STORED_FINDING_KEYS}, now)]
        return judged + fresh, upto, old | {p.id for p in fresh}

    def emit(self) -> list[dict[str, Any]]:
        """Emit every alert due now; returns them (``seq`` order)."""
        now = self.clock.now()
        alerts = self.outbox.emit_due(now, self.global_sinks)
        if alerts:
            self.emitted += len(alerts)
            for a in alerts:
                self.lateness.append((now - parse_rfc3339(a["due_at"])).total_seconds())
            del self.lateness[:-1000]
            if self.on_emit is not None:
                self.on_emit(alerts)
        return alerts

    def tick(self, force: bool = False) -> list[dict[str, Any]]:
        self.plan(force)
        return self.emit()

    def seconds_until_due(self, cap: float) -> float:
        nxt = self.outbox.next_due()
        if nxt is None:
            return cap
        return max(0.0, min(cap, (parse_rfc3339(nxt) - self.clock.now()).total_seconds()))


class AlertService:
    """Scheduler + deliverer on background threads (what ``serve`` runs)."""

    def __init__(self, store: ReadModelStore, outbox: Outbox, clock: Clock,
                 kafka: AlertSink | None = None, policy: RetryPolicy | None = None,
                 scan_interval: float = 0.5, replan_interval: float = 30.0,
                 before_scan: Callable[[], Any] | None = None, own: bool = False,
                 position: Callable[[], int] | None = None) -> None:
        self.store, self.outbox = store, outbox
        self.own = own  # close() closes the store and the outbox too
        self.deliverer = Deliverer(outbox, clock, policy or RetryPolicy.from_env(), kafka)
        self.new_alerts = threading.Condition()
        self.scheduler = AlertScheduler(store, outbox, clock,
                                        ("kafka",) if kafka is not None else (),
                                        replan_interval, self._emitted, position)
        self.scan_interval = scan_interval
        self.before_scan = before_scan  # e.g. catch the projections up when nothing else does
        self._stop = threading.Event()
        self.wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.last_scan_seconds = 0.0

    def _emitted(self, alerts: list[dict[str, Any]]) -> None:
        self.deliverer.wake.set()
        with self.new_alerts:
            self.new_alerts.notify_all()

    def _loop(self) -> None:
        next_scan = 0.0
        while not self._stop.is_set():
            self.wake.clear()
            try:
                if time.monotonic() >= next_scan:
                    began = time.thread_time()  # this thread's CPU, not its GIL waits
                    if self.before_scan is not None:
                        self.before_scan()
                    self.scheduler.plan()
                    self.scheduler.emit()
                    took = time.thread_time() - began
                    # The cheaper of the last two scans: one costly scan (the first after
                    # a start, a burst) does not delay the next; a stream of them does.
                    budget = min(took, self.last_scan_seconds)
                    self.last_scan_seconds = took
                    next_scan = time.monotonic() + max(self.scan_interval,
                                                       budget * SCAN_DUTY_FACTOR)
                else:
                    self.scheduler.emit()
                timeout = self.scheduler.seconds_until_due(
                    max(0.0, next_scan - time.monotonic()))
            except Exception:  # keep scheduling; the outbox keeps what is owed
                self.errors += 1
                log.exception("alert scheduler")
                timeout = self.scan_interval
            self.wake.wait(timeout)

    def start(self) -> AlertService:
        self.deliverer.start()
        self._thread = threading.Thread(target=self._loop, name="alert-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.deliverer.stop()

    def close(self) -> None:
        """Stop, then close the store and outbox when this service opened them."""
        self.stop()
        if self.own:
            self.outbox.close()
            self.store.close()

    def queue_length(self) -> int:
        return self.outbox.queue_length()
