"""``serve``'s supervision of its projections worker.

The worker (``auditledger projections run --follow``) is a child process: Python-heavy,
it must not hold the API's GIL. The supervisor starts it, restarts it when it dies, and
tells ``/readyz`` whether it is running:

- the worker is started with ``PR_SET_PDEATHSIG`` from the supervisor's own thread, which
  lives as long as ``serve``: a ``kill -9`` of ``serve`` kills the worker too;
- a worker that exits for any reason is started again after a backoff that doubles from
  ``BACKOFF_INITIAL`` to ``BACKOFF_MAX`` seconds, and falls back to the initial delay once
  a worker has stayed up for ``STABLE_AFTER`` seconds (a crash loop does not spin, a rare
  crash is repaired at once);
- its stderr is passed through to ``serve``'s, and its last line kept for ``/readyz``
  (``error: another projections worker … holds …`` when an orphan holds the store lock).

While the worker is dead or waiting to be restarted, ``state()["alive"]`` is false and
``/readyz`` answers 503.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from ledger.children import die_with_parent

BACKOFF_INITIAL = 1.0
BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0
STOP_TIMEOUT = 30.0


def worker_command(data: Path, alerts: bool = True) -> list[str]:
    """The projections worker ``serve`` runs for data directory ``data``; with ``alerts``
    it also runs the alert scheduler and deliverer (``--alerts``), off ``serve``'s GIL."""
    return [sys.executable, "-c", "from ledger.cli import main; main()",
            "projections", "run", "--data", str(data), "--follow",
            *(["--alerts"] if alerts else [])]


class WorkerSupervisor:
    """Runs ``command`` as a child process for as long as it is not stopped."""

    def __init__(self, command: Sequence[str], *, backoff_initial: float = BACKOFF_INITIAL,
                 backoff_max: float = BACKOFF_MAX, stable_after: float = STABLE_AFTER) -> None:
        self.command = list(command)
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.stable_after = stable_after
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at: float | None = None
        self.restarts = 0
        self.last_exit: int | None = None
        self.last_error: str | None = None
        self.next_start_in: float | None = None
        self._thread = threading.Thread(target=self._run, name="projections-supervisor",
                                        daemon=True)

    def start(self) -> WorkerSupervisor:
        self._thread.start()
        return self

    def _spawn(self) -> subprocess.Popen[bytes]:
        parent = os.getpid()
        # preexec_fn runs in the forked child: PDEATHSIG is bound to *this* thread,
        # which lives until stop(); the child exits at once if serve already died.
        proc = subprocess.Popen(self.command, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE,
                                preexec_fn=lambda: die_with_parent(parent))
        assert proc.stderr is not None
        threading.Thread(target=self._relay, args=(proc.stderr,), name="worker-stderr",
                         daemon=True).start()
        return proc

    def _relay(self, stream: IO[bytes]) -> None:
        """Pass the worker's stderr through; keep its last non-empty line."""
        with contextlib.suppress(OSError, ValueError):
            for line in stream:
                sys.stderr.buffer.write(line)
                sys.stderr.buffer.flush()
                if text := line.decode(errors="replace").strip():
                    self.last_error = text
        with contextlib.suppress(OSError):
            stream.close()

    def _run(self) -> None:
        delay = self.backoff_initial
        while not self._stop.is_set():
            with self._lock:
                if self._stop.is_set():
                    return
                self.last_error = None  # a line of this worker's, not of the last one
                self._proc = self._spawn()
                self._started_at = time.monotonic()
                self.next_start_in = None
            code = self._proc.wait()
            ran = time.monotonic() - self._started_at
            with self._lock:
                self.last_exit = code
                self._started_at = None
            if self._stop.is_set():
                return
            delay = self.backoff_initial if ran >= self.stable_after else delay
            self.next_start_in = delay
            if self._stop.wait(delay):
                return
            self.restarts += 1
            delay = min(delay * 2, self.backoff_max)

    def state(self) -> dict[str, Any]:
        """``{alive, pid, restarts, last_exit, last_error, restart_in}`` for ``/readyz``:
        ``alive`` only while a started worker has not exited; ``restart_in`` the backoff
        (seconds) a dead worker waits before its restart."""
        with self._lock:
            proc = self._proc
            alive = proc is not None and self._started_at is not None and proc.poll() is None
            return {"alive": alive, "pid": proc.pid if alive and proc else None,
                    "restarts": self.restarts, "last_exit": self.last_exit,
                    "last_error": self.last_error,
                    "restart_in": None if alive else self.next_start_in}

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop supervising, SIGTERM the worker and wait for it (SIGKILL past
        ``timeout``)."""
        self._stop.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._thread.join(timeout=5)
