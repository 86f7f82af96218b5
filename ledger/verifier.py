"""Signature checking on every core.

One core checks about 9,000 Ed25519 signatures a second, which alone caps ingest below the
10,000 events/s target. Batches are split between this process and a small pool of worker
processes (started with ``spawn``, so it is safe beside threads such as the API server's).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor

from ledger.signing import verify_batch

PARALLEL_THRESHOLD = 128


class Verifier:
    def __init__(self, workers: int | None = None) -> None:
        if workers is None:
            workers = max(0, (os.cpu_count() or 1) - 1)
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    def verify(self, items: list[tuple[bytes, bytes, str]]) -> list[bool]:
        """``(public_key, message, signature)`` triples → validity, in order."""
        if self.workers == 0 or len(items) < PARALLEL_THRESHOLD:
            return verify_batch(items)
        parts = self.workers + 1
        step = -(-len(items) // parts)
        chunks = [items[i : i + step] for i in range(0, len(items), step)]
        pool = self._get_pool()
        futures: list[Future[list[bool]]] = [pool.submit(verify_batch, c) for c in chunks[1:]]
        out = verify_batch(chunks[0])  # this process takes a share too
        for fut in futures:
            out.extend(fut.result())
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
