"""Signature checking on every core.

One core checks about 9,000 Ed25519 signatures a second, which alone caps ingest below the
10,000 events/s target. Ingest therefore streams signatures to a small pool of worker
processes in chunks *while it is still parsing the rest of the batch*, so parsing, schema
checks and hashing in this process overlap with verification in the workers. The pool is
started with ``spawn``, so it is safe beside threads such as the API server's.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

from ledger.signing import verify_batch

Item = tuple[bytes, bytes, str]  # (public key, message, signature)
CHUNK = 100


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

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def start(self, items: list[Item]) -> Callable[[], list[bool]]:
        """Begin checking ``items``; the returned function waits for the answers.

        Chunks kept for this process are checked lazily, when their answer is awaited, so
        that parsing the rest of the batch goes first."""
        self._kept += self.main_share
        if self.workers == 0 or len(items) < 16 or self._kept >= 1.0:
            self._kept = max(0.0, self._kept - 1.0)
            return lambda: verify_batch(items)
        future: Future[list[bool]] = self._get_pool().submit(verify_batch, items)
        return future.result

    def verify(self, items: list[Item]) -> list[bool]:
        """``(public_key, message, signature)`` triples → validity, in order."""
        waits = [self.start(items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]
        return [ok for wait in waits for ok in wait()]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
