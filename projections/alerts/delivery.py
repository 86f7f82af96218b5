"""Delivering emitted alerts: retries with exponential backoff and jitter, dead letters.

Each (alert, sink) delivery row is attempted until the sink acknowledges it; a failed
attempt is retried after ``RetryPolicy.delay(n)``; after ``max_attempts`` (or a permanent
failure) it is ``dead`` — kept, visible in ``GET /v1/alerts?state=dead`` and
``auditledger alerts dead``, and re-queued with ``POST /v1/alerts/{id}/redeliver``.

The outbox row is updated only after the sink answered, so a crash in between re-sends
the same alert (same id, same body) after restart: at-least-once, which a receiver that
dedupes by id experiences as exactly once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from tenacity import RetryCallState
from tenacity.wait import wait_base, wait_exponential, wait_random_exponential

from ledger.clock import Clock
from projections.alerts.outbox import Outbox
from projections.alerts.sinks import AlertSink, DeliveryError, alert_body
from projections.alerts.sinks.config import KINDS, make_sink
from projections.alerts.sinks.webhook import WebhookSink

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Delay before attempt n+1 = min(max_delay, base × factor^(n−1)), of which the
    ``jitter`` fraction is random ("equal jitter"): receivers that come back are not hit by
    every sender at the same instant, and the delay never collapses to zero.

    The schedule is kept in the outbox (``next_attempt_at``), not slept through, so it
    survives a restart and a ``FixedClock`` drives it in tests. ``stamina``, the project's
    retry library, only retries in-process (it sleeps); the delay here comes from
    tenacity, the library stamina is built on: its fixed and random exponential waits,
    added. Nothing here sleeps."""

    base_s: float = 1.0
    factor: float = 2.0
    max_delay_s: float = 300.0
    max_attempts: int = 12  # about 25 minutes with the defaults before dead-lettering
    jitter: float = 0.5

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = max(1, attempts)
        return float(self._wait(state))

    @property
    def _wait(self) -> wait_base:
        fixed, rand = 1 - self.jitter, self.jitter
        return (wait_exponential(multiplier=self.base_s * fixed, exp_base=self.factor,
                                 max=self.max_delay_s * fixed)
                + wait_random_exponential(multiplier=self.base_s * rand, exp_base=self.factor,
                                          max=self.max_delay_s * rand))

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """``AUDITLEDGER_ALERT_RETRY_BASE_S``, ``…_MAX_DELAY_S``, ``…_MAX_ATTEMPTS``
        (tests and operators tune them without code)."""
        env, d = os.environ.get, cls()
        return cls(base_s=float(env("AUDITLEDGER_ALERT_RETRY_BASE_S", d.base_s)),
                   max_delay_s=float(env("AUDITLEDGER_ALERT_RETRY_MAX_DELAY_S",
                                         d.max_delay_s)),
                   max_attempts=int(env("AUDITLEDGER_ALERT_RETRY_MAX_ATTEMPTS",
                                        d.max_attempts)))


class Deliverer:
    """Attempts due deliveries. ``run_once`` is synchronous (tests drive it with a
    ``FixedClock``); ``start`` runs a loop with a small thread pool so one slow receiver
    does not hold up the others."""

    def __init__(self, outbox: Outbox, clock: Clock, policy: RetryPolicy | None = None,
                 kafka: AlertSink | None = None,
                 webhook_factory: Callable[[str, str], AlertSink] = WebhookSink,
                 workers: int = 8,
                 sink_factory: Callable[[dict[str, Any]], AlertSink] | None = None) -> None:
        self.outbox, self.clock = outbox, clock
        self.policy = policy or RetryPolicy()
        self.kafka = kafka
        self.webhook_factory = webhook_factory
        #: Builds the sink of one stored receiver (``Outbox.webhook`` row, with secret).
        self.sink_factory = sink_factory or (lambda hook: make_sink(hook, webhook_factory))
        self.workers = workers
        self._hooks: dict[str, tuple[Any, AlertSink]] = {}
        self._lock = threading.Lock()
        self._inflight: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self.wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.attempts = 0

    def _sink(self, name: str) -> AlertSink | None:
        """The sink of a delivery row: ``kafka``, or ``<kind>:<receiver id>`` (rebuilt
        when the stored receiver changed; None once it is deleted)."""
        if name == "kafka":
            return self.kafka
        kind, _, rid = name.partition(":")
        if kind not in KINDS or not rid:
            return None
        hook = self.outbox.webhook(rid)
        if hook is None or hook["kind"] != kind:
            return None
        stamp = (hook["url"], hook["secret"], orjson.dumps(hook["config"]))
        with self._lock:
            cached = self._hooks.get(hook["id"])
            if cached is None or cached[0] != stamp:
                if cached is not None:
                    cached[1].close()
                cached = (stamp, self.sink_factory(hook))
                self._hooks[hook["id"]] = cached
            return cached[1]

    def attempt(self, alert_id: str, sink_name: str, attempts: int) -> bool:
        """One attempt of one delivery; True when delivered."""
        self.attempts += 1
        alert = self.outbox.get(alert_id)
        try:
            sink = self._sink(sink_name)
        except Exception as exc:  # a stored receiver no sink can be built from
            log.error("alert delivery %s -> %s: %s", alert_id, sink_name, type(exc).__name__)
            self.outbox.failed(alert_id, sink_name, f"bad receiver: {type(exc).__name__}",
                               None)
            return False
        if alert is None or sink is None:
            self.outbox.cancel_delivery(alert_id, sink_name, "sink no longer configured")
            return False
        try:
            sink.deliver(alert, alert_body(alert))
        except DeliveryError as exc:
            n = attempts + 1
            retry: datetime | None = None
            if not exc.permanent and n < self.policy.max_attempts:
                retry = self.clock.now() + timedelta(seconds=self.policy.delay(n))
            self.outbox.failed(alert_id, sink_name, str(exc), retry)
            return False
        self.outbox.delivered(alert_id, sink_name, self.clock.now())
        return True

    def run_once(self) -> int:
        """Attempt every delivery due now, one by one; returns how many were delivered."""
        done = 0
        for aid, sink, attempts in self.outbox.due_deliveries(self.clock.now(), limit=10_000):
            done += self.attempt(aid, sink, attempts)
        return done

    # -- background loop -----------------------------------------------------------------

    def _run_one(self, key: tuple[str, str], attempts: int) -> None:
        try:
            self.attempt(key[0], key[1], attempts)
        except Exception:  # a broken sink must not kill the loop; the row stays pending
            log.exception("alert delivery %s -> %s", *key)
        finally:
            with self._lock:
                self._inflight.discard(key)
            self.wake.set()

    def _loop(self) -> None:
        assert self._pool is not None
        while not self._stop.is_set():
            self.wake.clear()
            try:
                with self._lock:
                    busy = set(self._inflight)
                free = self.workers * 4 - len(busy)
                due = self.outbox.due_deliveries(self.clock.now(), limit=max(0, free),
                                                 exclude=busy) if free > 0 else []
                for aid, sink, attempts in due:
                    key = (aid, sink)
                    with self._lock:
                        self._inflight.add(key)
                    self._pool.submit(self._run_one, key, attempts)
                # A past next_attempt_at belongs to a delivery in flight: its completion
                # sets ``wake``; poll briefly meanwhile rather than spin.
                timeout = self._until(self.outbox.next_delivery_at(), 1.0) or 0.05
            except Exception:
                log.exception("alert delivery loop")
                timeout = 1.0
            self.wake.wait(timeout)

    def _until(self, at: str | None, cap: float) -> float:
        if at is None:
            return cap
        from ledger.clock import parse_rfc3339

        return max(0.0, min(cap, (parse_rfc3339(at) - self.clock.now()).total_seconds()))

    def start(self) -> Deliverer:
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="alert-delivery")
        self._thread = threading.Thread(target=self._loop, name="alert-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        for _, sink in self._hooks.values():
            sink.close()
        if self.kafka is not None:
            self.kafka.close()

    def info(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "inflight": len(self._inflight)}
