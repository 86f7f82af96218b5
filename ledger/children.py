"""How the ledger's helper processes die with the process that started them.

A ``kill -9`` gives a parent no chance to stop its children, and an orphan that goes on
running is worse than a crash: a second projections worker beside the restarted one, or
signature workers holding memory and the resource tracker's pipe open forever. Two means,
for two kinds of child:

- ``die_with_parent()``, called in a child (or as a ``preexec_fn``): Linux's
  ``PR_SET_PDEATHSIG`` sends it SIGKILL when its parent *thread* ends, at once. Right for
  a child started by a thread that lives as long as the child should (the ``serve``
  supervisor's, a runner's main thread).
- ``exit_when_orphaned(parent)``, a pool initializer: a daemon thread exits the process
  when it finds itself reparented. Right for ``ProcessPoolExecutor`` workers, which the
  pool starts from whichever thread submits, a thread that may end long before the pool
  (PDEATHSIG would then kill a healthy worker).
"""

from __future__ import annotations

import os
import signal
import threading
import time

ORPHAN_POLL_SECONDS = 0.2

_PR_SET_PDEATHSIG = 1
try:  # loaded before any fork: a preexec_fn must not import or load libraries
    import ctypes

    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError, ImportError):  # not Linux
    _prctl = None


def die_with_parent(parent: int | None = None) -> None:
    """In a child: ask Linux to SIGKILL it when its parent dies. With ``parent`` (the pid
    the caller expects), exit at once if that parent already died before the request was
    made; without it, if the child was already handed to init. Elsewhere than Linux it
    does nothing: such children stop at the end of their pipes."""
    if _prctl is None:
        return
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    orphaned = os.getppid() == 1 if parent is None else os.getppid() != parent
    if orphaned:
        os._exit(1)


def exit_when_orphaned(parent: int, interval: float = ORPHAN_POLL_SECONDS) -> None:
    """In a child: exit (code 1, no clean-up) within ``interval`` seconds of the process
    ``parent`` no longer being its parent, whichever thread of it started this one."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()
