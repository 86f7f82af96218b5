"""The second applier of a catch-up: a child process that applies its share of the log.

Why: applying events is the longest job of a catch-up, and it is Python under one GIL.
The reader process splits each chunk by the key its events' state hangs on
(``projections.routing``); the runner applies one share, this process the other, each
with the same ``AuditProjection`` and its own caches. This process sends the rows of
each batch to the writer process (``projections.writer``), which commits them in the
same transaction as the runner's rows of that batch and its position — so exactly-once
is unchanged: a batch is committed whole, both shares and the position, or not at all.

Pipes: the spec on stdin (the store, whether it was empty, the tracking name), chunks
from the reader on ``IN`` (``(rows, end)``), batches to the writer on ``OUT``
(``{"end": seq, "rows": tables}``). It stops at the end of its input; if it fails, its
output ends and the writer fails the next commit that needs its share. It dies with the
runner (``PR_SET_PDEATHSIG``).

Caches dropped for memory (``Batch.cold``): the next batch reads the store, so this
process first waits until the store's position covers every batch it has sent.
"""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
import time

from projections import pipes, routing
from projections.store import ReadModelStore, open_spec, table_rows

#: How long ``close`` lets a shard whose input ended exit by itself before killing it.
CLOSE_GRACE_S = 10.0


class ShardProcess:
    """The child, and the two pipes that connect it to the reader and to the writer."""

    def __init__(self, store: ReadModelStore, authoritative: bool, tracking_name: str,
                 cache_limit: int) -> None:
        in_r, self.reader_fd = pipes.pipe()  # reader -> this child
        self.writer_fd, out_w = pipes.pipe()  # this child -> writer
        self.proc = pipes.spawn("projections.shard", stdin=True, fds=(in_r, out_w))
        os.close(in_r)
        os.close(out_w)
        assert self.proc.stdin is not None
        pipes.send(self.proc.stdin, pickle.dumps({
            "store": store.writer_spec(), "authoritative": authoritative,
            "tracking": tracking_name, "cache_limit": cache_limit}))
        self.proc.stdin.close()

    def started(self) -> None:
        """Close this process's copies of the pipe ends that the reader and the writer
        now hold: each pipe must end when its one writer does."""
        for fd in (self.reader_fd, self.writer_fd):
            if fd >= 0:
                os.close(fd)
        self.reader_fd = self.writer_fd = -1

    def close(self) -> None:
        """The shard exits by itself once its input pipe ends; a loaded machine may take a
        moment to let it. Only one still running after that grace is killed."""
        self.started()  # if the reader never started
        try:
            self.proc.wait(timeout=CLOSE_GRACE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def _serve(in_fd: int, out_fd: int) -> None:
    from projections.projection import AuditProjection
    from projections.writer import encode

    pipes.die_with_parent()
    gc.disable()  # batches are millions of small acyclic objects (see the runner)
    spec = pipes.receive(sys.stdin.buffer)
    if spec is None:
        return
    spec = pickle.loads(spec)
    store = open_spec(spec["store"])
    projection = AuditProjection(store)
    projection.batch.authoritative = spec["authoritative"]
    projection.batch.cache_limit = spec["cache_limit"]
    sent = 0
    try:
        with open(in_fd, "rb") as inp, open(out_fd, "wb") as out:
            for frame in pipes.Receiver(inp):
                rows, end = pickle.loads(frame)
                if projection.batch.cold:
                    while (store.max_tracking_id(spec["tracking"]) or 0) < sent:
                        time.sleep(0.005)
                    projection.batch.cold = False
                writes = projection.prepare(rows, shadow=routing.BROADCAST)
                pipes.send(out, encode({"end": end, "rows": table_rows(writes)}))
                sent = end
    except BrokenPipeError:  # the writer stopped: the catch-up ended early
        pass
    finally:
        store.close()


if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
