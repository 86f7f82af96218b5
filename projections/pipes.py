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
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ledger import children

_ROOT = str(Path(__file__).resolve().parents[1])


def spawn(module: str, *args: str, stdin: bool = False,
          fds: tuple[int | None, ...] = ()) -> subprocess.Popen[bytes]:
    """``python -m module args fds`` with pipes to its stdout (and stdin), widened; each
    of ``fds`` that is not None is inherited (pipes between two children) and its number
    appended to the arguments. The child finds this package whatever the caller's working
    directory."""
    passed = tuple(fd for fd in fds if fd is not None)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args, *map(str, passed)], env=env,
        stdout=subprocess.PIPE, stdin=subprocess.PIPE if stdin else None, pass_fds=passed,
    )
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            widen(pipe)
    return proc


def widen(pipe: IO[bytes] | int) -> None:
    """Give a pipe 1 MiB of buffer (the default is 64 KiB), where the system allows."""
    fd = pipe if isinstance(pipe, int) else pipe.fileno()
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or over the limit
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)


def pipe() -> tuple[int, int]:
    """A widened pipe between two children: ``(read end, write end)``, not inherited
    unless passed (``spawn(fds=…)``)."""
    r, w = os.pipe()
    widen(w)
    return r, w


class Receiver:
    """Frames of a stream received on a thread into a small queue, so that the process
    writing them is not held up while this one works (the pipe reads release the GIL).
    Iterating gives the frames, then stops at the end of the stream (or if it breaks)."""

    def __init__(self, stream: IO[bytes], depth: int = 1) -> None:
        self._stream = stream
        self._frames: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._receive, name="frames", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        try:
            while (frame := receive(self._stream)) is not None:
                self._frames.put(frame)
        except (OSError, ValueError):  # closed by close(): the reader stopped early
            pass
        self._frames.put(None)

    def get(self) -> bytes | None:
        """The next frame, or None at the end of the stream."""
        return self._frames.get()

    def __iter__(self) -> Iterator[bytes]:
        while (frame := self._frames.get()) is not None:
            yield frame

    def close(self) -> None:
        """Close the stream (after its writer has been stopped) and reap the thread."""
        while self._thread.is_alive():  # it may be blocked on a full queue
            with contextlib.suppress(queue.Empty):
                self._frames.get(timeout=0.05)
        self._stream.close()


def die_with_parent() -> None:
    """In a child: ask Linux to SIGKILL it when its parent dies, so that a ``kill -9`` of
    the runner leaves nothing behind that goes on reading or writing (elsewhere a child
    stops at the end of its pipe). One implementation: ``ledger.children``."""
    children.die_with_parent()


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
