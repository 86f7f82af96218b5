"""Reading the SQLite log for the projections: the four columns they need, and a reader
process that reads ahead during a long catch-up.

Why raw rows: the projections need ``seq``, ``type``, ``controller`` and the envelope
(``body``, which also holds ``event_id``, ``occurred_at`` and ``subject``). Building a full
``StoredEvent`` (eleven columns, hashes included) cost about a third of a replay.

Why a process: reading a million rows from SQLite is a few seconds of CPU, mostly spent
making Python objects under the GIL. A child process (``python -m projections.prefetch``,
standard library only, so it starts in milliseconds) reads chunk after chunk and writes
them as pickles to its stdout; the runner unpickles them on the other core while it
applies the previous chunk. The pipe gives back-pressure: the child is never more than one
chunk ahead. Each chunk is its own short read transaction, so the ledger's writer and its
checkpoints are not held up by the catch-up.

The child only reads; positions, commits and exactly-once stay with the runner.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import pickle
import sqlite3
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import IO

from projections import pipes

#: ``(seq, type, controller, body)`` — one event as the projections read it.
Row = tuple[int, str, str, bytes]
#: Events per ``(controller, type)`` of a chunk, and each controller's last ``seq`` in it.
Tally = tuple[dict[tuple[str, str], int], dict[str, int]]


class Rows(list[Row]):
    """A chunk of rows from the reader process, with its ``tally`` (counting is event-only
    work, so it is done on the other core: ``controllers.count``) and ``end``, the ``seq``
    of the chunk's last row. When the chunk is split (``shard_fd``) the rows are this
    applier's share and ``split`` is true; ``tally`` and ``end`` still cover all of it."""

    tally: Tally | None = None
    end: int = 0
    size: int = 0  # events in the whole chunk
    split: bool = False


def tally(rows: Sequence[Row]) -> Tally:
    # rows are in log order: the last seq per controller wins
    return dict(Counter([(row[2], row[1]) for row in rows])), {row[2]: row[0] for row in rows}


_SQL = "SELECT seq, type, controller, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?"


def connect(path: str) -> sqlite3.Connection:
    """A read-only connection to the ledger's SQLite log (it never writes the log)."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)


def read_rows(conn: sqlite3.Connection, after: int, limit: int) -> list[Row]:
    return conn.execute(_SQL, (after, limit)).fetchall()


class Prefetcher:
    """Rows after ``after`` in chunks of ``chunk``, read by a child process, until the
    child finds the end of the log (events appended later are read by the caller).

    A thread of the runner's process receives each chunk's frame while the runner applies
    the previous chunk (``pipes.Receiver``); the runner only unpickles it. With
    ``shard_fd`` (the write end of a pipe to ``projections.shard``), each chunk is split
    by ``projections.routing``: the other applier's share goes there, this one's here."""

    def __init__(self, path: str, after: int, chunk: int, shard_fd: int | None = None) -> None:
        self.proc = pipes.spawn("projections.prefetch", path, str(after), str(chunk),
                                fds=(shard_fd,))
        assert self.proc.stdout is not None
        # One frame waiting here, one being received: the reader stays a few chunks ahead.
        self._frames = pipes.Receiver(self.proc.stdout)

    def __iter__(self) -> Iterator[Rows]:
        """Chunks in order. If the child dies (its error is on stderr), the iteration just
        ends early: the runner goes on reading in its own thread from the last row it got."""
        for frame in self._frames:
            sent = pickle.loads(frame)
            if sent is None:
                return
            rows = Rows(sent[0])
            rows.tally, rows.end, rows.split = sent[1], sent[2], sent[3]
            rows.size = sum(sent[1][0].values())
            yield rows

    def close(self) -> None:
        """Stop the child (early exit or error) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._frames.close()

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def chunk_size(chunk: int, n: int, left: int) -> int:
    """The size of the ``n``-th chunk (from 0) when ``left`` rows remain to the end of the
    log as it stood at the start: ``chunk`` in the middle, smaller at both ends.

    While the first chunk is read, the runner has nothing to apply; while the last
    batches commit, it has nothing either: the two cores are half idle at both ends of a
    catch-up (about a second per million events with 50,000-row chunks). Chunks grow from
    a sixteenth of ``chunk``, doubling, and shrink by halves over the last two, so each
    end costs a few milliseconds."""
    smallest = max(1, chunk // 16)
    rising = smallest << min(n, 16)
    falling = max(smallest, left // 2) if left > 0 else chunk
    return max(1, min(chunk, rising, falling))


def _serve(path: str, after: int, chunk: int, shard_fd: int | None = None) -> None:
    pipes.die_with_parent()
    # Each chunk is a few hundred thousand acyclic tuples, freed by reference counting:
    # the cyclic collector only rescans them (it was two thirds of this process's CPU).
    gc.disable()
    conn = connect(path)
    try:
        with (open(shard_fd, "wb") if shard_fd is not None
              else contextlib.nullcontext()) as shard:
            _read(conn, sys.stdout.buffer, shard, after, chunk)
    except BrokenPipeError:  # the runner (or the other applier) stopped early
        pass
    finally:
        conn.close()


def _read(conn: sqlite3.Connection, out: IO[bytes], shard: IO[bytes] | None, after: int,
          chunk: int) -> None:
    # Types and controllers are a handful of distinct strings: sending each once (pickle
    # refers back to an object it has already written) makes the runner's unpickling
    # about 40 % cheaper, and its dictionary lookups hit strings with cached hashes.
    names: dict[str, str] = {}
    name = names.setdefault
    end = conn.execute("SELECT max(seq) FROM events").fetchone()[0] or after
    if shard is not None:
        from projections.routing import split  # msgspec: only a splitting reader needs it
    for n in itertools.count():
        rows = read_rows(conn, after, chunk_size(chunk, n, end - after))
        if not rows:
            break
        rows = [(seq, name(t, t), name(c, c), body) for seq, t, c, body in rows]
        last = rows[-1][0]
        mine = rows
        if shard is not None:
            # The other applier's share first: a chunk the runner has, it has too.
            mine, other = split(rows)
            pipes.send(shard, pickle.dumps((other, last), protocol=pickle.HIGHEST_PROTOCOL))
        pipes.send(out, pickle.dumps((mine, tally(rows), last, shard is not None),
                                     protocol=pickle.HIGHEST_PROTOCOL))
        after = last
    pipes.send(out, pickle.dumps(None))


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
           int(sys.argv[4]) if len(sys.argv) > 4 else None)
