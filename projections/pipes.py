"""What the runner's helper processes (``prefetch``, the reader, and ``writer``) share:
how they are started, how they die, and the frames they exchange over pipes.

A frame is a 4-byte big-endian length and that many bytes. Frames are read whole, with a
pipe buffer of 1 MiB (Linux): a catch-up moves tens of megabytes per batch, and through a
64 KiB pipe the two processes took turns hundreds of times per batch, each turn waiting
for the other process to be scheduled on a busy machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

_ROOT = str(Path(__file__).resolve().parents[1])


def spawn(module: str, *args: str, stdin: bool = False) -> subprocess.Popen[bytes]:
    """``python -m module args`` with pipes to its stdout (and stdin), widened. The child
    finds this package whatever the caller's working directory."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args], env=env, stdout=subprocess.PIPE,
        stdin=subprocess.PIPE if stdin else None,
    )
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            widen(pipe)
    return proc


def widen(pipe: IO[bytes]) -> None:
    """Give a pipe 1 MiB of buffer (the default is 64 KiB), where the system allows."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or over the limit
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)


def die_with_parent() -> None:
    """In a child: ask Linux to SIGKILL it when its parent dies, so that a ``kill -9`` of
    the runner leaves nothing behind that goes on reading or writing (elsewhere a child
    stops at the end of its pipe)."""
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request was made
        os._exit(1)


def send(stream: IO[bytes], payload: bytes) -> None:
    stream.write(len(payload).to_bytes(4, "big"))
    stream.write(payload)
    stream.flush()


def receive(stream: IO[bytes]) -> bytes | None:
    """The next frame, or None at the end of the stream (or in the middle of a frame)."""
    head = stream.read(4)
    if len(head) < 4:
        return None
    size = int.from_bytes(head, "big")
    payload = stream.read(size)
    return payload if len(payload) == size else None
