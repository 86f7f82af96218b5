"""Signature checking on every core.

One core checks about 9,000 Ed25519 signatures a second, which alone caps ingest below the
10,000 events/s target. Ingest therefore streams signatures to a small pool of worker
processes in chunks *while it is still parsing the rest of the batch*, so parsing, schema
checks and hashing in this process overlap with verification in the workers. The pool is
started with ``spawn``, so it is safe beside threads such as the API server's.

A pool whose worker died (``kill -9``, the OOM killer) is broken for good: every pending
and later submission raises ``BrokenProcessPool``. The verifier then drops it, builds a
new one and resubmits the chunk (``stamina``, the project's retry library), so a lost
worker costs a request some latency, never an error. ``health()`` tells ``/readyz``;
``repair()`` lets a timer rebuild a broken pool before the next request needs it. Workers
exit when their parent does (``ledger.children.exit_when_orphaned``).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import stamina

from ledger.children import exit_when_orphaned
from ledger.signing import verify_batch

Item = tuple[bytes, bytes, str]  # (public key, message, signature)
CHUNK = 100
ATTEMPTS = 3  # a fresh pool that breaks twice more is not a transient fault


class Verifier:
    def __init__(self, workers: int | None = None, main_share: float | None = None) -> None:
        cores = os.cpu_count() or 1
        if workers is None:
            workers = cores - 1
        self.workers = workers
        # The share of signature chunks this process checks itself, after parsing: with
        # one worker per spare core, every core stays busy and none is oversubscribed
        # (measured: three busy processes on two cores run slower than two).
        self.main_share = (0.3 if workers else 1.0) if main_share is None else main_share
        self._pool: ProcessPoolExecutor | None = None
        self._kept = 0.0
        self._lock = threading.Lock()  # guards _pool against two threads rebuilding it
        self.rebuilds = 0
        self.last_error: str | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=exit_when_orphaned, initargs=(os.getpid(),),
                )
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor, why: str) -> None:
        """Drop ``pool`` if it is still the current one (the first of several waiters on
        a broken pool rebuilds, the others find the new pool); the next submission
        starts a new pool."""
        with self._lock:
            if self._pool is not pool:
                return
            self._pool = None
            self.rebuilds += 1
            self.last_error = why
        pool.shutdown(wait=False, cancel_futures=True)

    def _submit(self, items: list[Item]) -> Callable[[], list[bool]]:
        pool = self._get_pool()
        try:
            future: Future[list[bool]] = pool.submit(verify_batch, items)
        except BrokenProcessPool as exc:
            self._discard(pool, f"BrokenProcessPool: {exc}")
            raise

        def wait() -> list[bool]:
            try:
                return future.result()
            except BrokenProcessPool as exc:
                self._discard(pool, f"BrokenProcessPool: {exc}")
                raise

        return wait

    def start(self, items: list[Item]) -> Callable[[], list[bool]]:
        """Begin checking ``items``; the returned function waits for the answers.

        Chunks kept for this process are checked lazily, when their answer is awaited, so
        that parsing the rest of the batch goes first."""
        self._kept += self.main_share
        if self.workers == 0 or len(items) < 16 or self._kept >= 1.0:
            self._kept = max(0.0, self._kept - 1.0)
            return lambda: verify_batch(items)
        try:
            first: Callable[[], list[bool]] | None = self._submit(items)
        except BrokenProcessPool:
            first = None  # submitted again, to a new pool, when awaited

        def wait() -> list[bool]:
            pending = first
            for attempt in stamina.retry_context(on=BrokenProcessPool, attempts=ATTEMPTS,
                                                 wait_initial=0.05, wait_max=0.5):
                with attempt:
                    if pending is None:
                        pending = self._submit(items)
                    answer, pending = pending, None
                    return answer()
            raise AssertionError("unreachable: stamina re-raises the last failure")

        return wait

    def verify(self, items: list[Item]) -> list[bool]:
        """``(public_key, message, signature)`` triples → validity, in order."""
        waits = [self.start(items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]
        return [ok for wait in waits for ok in wait()]

    def health(self) -> dict[str, Any]:
        """The pool as ``/readyz`` shows it: ``ok`` is false while the pool is broken or
        one of its workers is dead (until ``repair()`` or the next batch rebuilds it).
        ``alive`` counts live workers: the pool starts them as chunks arrive."""
        with self._lock:
            pool = self._pool
        ok, alive = _pool_state(pool)
        return {"ok": ok, "workers": self.workers, "alive": alive,
                "rebuilds": self.rebuilds, "last_error": self.last_error}

    def repair(self) -> None:
        """Drop a broken pool now, so the next batch finds a working one (a timer in
        ``serve`` calls this; without it the next batch rebuilds and retries)."""
        with self._lock:
            pool = self._pool
        if pool is not None and not _pool_state(pool)[0]:
            self._discard(pool, "a signature worker died")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def _pool_state(pool: ProcessPoolExecutor | None) -> tuple[bool, int]:
    """(healthy, live workers) of a pool; a pool not yet started is healthy."""
    if pool is None:
        return True, 0
    # concurrent.futures keeps the broken flag and the worker table private; they are
    # the only record of a worker's death before the next submission fails.
    try:
        procs = list((getattr(pool, "_processes", None) or {}).values())
    except RuntimeError:  # the pool's manager thread changed the table meanwhile
        procs = []
    alive = sum(1 for p in procs if p.is_alive())
    broken = bool(getattr(pool, "_broken", False))
    return not broken and alive == len(procs), alive
