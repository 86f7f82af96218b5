"""One projections worker per read-model store.

Two runners applying the same log to the same store would race for every tracking
position: at best one fails on each batch, at worst a restarted ``serve`` runs a second
worker beside an orphan of the first. ``projections run`` therefore holds an exclusive
``flock`` for its whole life on a lock file that belongs to its store:

- a SQLite store ``FILE``: ``FILE.lock`` beside it (so by default
  ``DIR/readmodels.sqlite.lock``), whichever data directory a worker names;
- a PostgreSQL store: ``DIR/projections-<hash of the DSN>.lock`` in the data directory
  (a store's positions belong to one data directory, docs/deployment.md).

The kernel drops the lock when the process dies, however it dies (``kill -9`` included),
so a stale lock file never blocks a restart. The file holds the holder's pid, for the
error message only.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path


class WorkerLocked(RuntimeError):
    """Another projections worker holds this store's lock."""


def lock_path(data: Path, target: str) -> Path:
    """The lock file of store ``target`` (a DSN or a SQLite path, as ``open_store`` tells
    them apart) for a worker on data directory ``data``."""
    if not (target.startswith(("postgresql://", "postgres://")) or "dbname=" in target):
        return Path(target + ".lock")
    digest = hashlib.sha256(target.encode()).hexdigest()[:16]
    return data / f"projections-{digest}.lock"


class WorkerLock:
    """An exclusive, non-blocking ``flock`` held until ``release()`` or process exit.
    The descriptor is not inherited, so the worker's own helper processes never keep
    the lock alive after it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> WorkerLock:
        """Take the lock, or raise ``WorkerLocked`` naming the holder at once."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise WorkerLocked(f"another projections worker (pid {holder}) holds "
                               f"{self.path}; one worker per read-model store") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> WorkerLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
