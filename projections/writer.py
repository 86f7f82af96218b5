"""A writer process that commits a catch-up's batches, so that applying events and writing
rows each get a core.

Why a process: a catch-up is bound by two kinds of work, applying events (Python, under
the GIL) and writing rows (SQLite in our process, or psycopg formatting ``COPY`` rows). On
a thread of the applying process, SQLite had to take a batch as one ``json_each``
statement per table, because ``executemany`` takes the GIL back after every row and the
busy applier makes each row wait for a switch interval; unpacking JSON costs SQLite about
twice the work of binding the rows. A child process has its own GIL: it decodes each
batch and binds its rows with ``executemany`` (``commit_rows(..., alone=True)``), and the
applying process only encodes the batch (``encode``: a fraction of a second per
million events). Measured in docs/benchmarks.md, "Projections".

Exactly-once is unchanged: the child commits each batch's rows and its position in one
transaction (``ReadModelStore.commit_rows``) and answers before the runner sends the next
one. It dies with its parent (``PR_SET_PDEATHSIG``), so after a ``kill -9`` of the runner
a commit in flight is rolled back, never half-written, and nothing outlives the runner to
write behind a restarted one.

Protocol, over the child's stdin and stdout: frames of a 4-byte big-endian length and an
``encode``d document. The first frame is the store's ``writer_spec()`` (on stdin, so a DSN's
password never shows in ``ps``); every later one is a request, ``{"op": "commit",
"tracking": [name, position], "rows": {table: rows}}`` or ``{"op": "create_indexes"}``.
Each frame is answered, in order, by ``{"ok": true}`` or ``{"error": class, "message":
text}``.
"""

from __future__ import annotations

import contextlib
import gc
import io
import os
import pickle
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from operator import itemgetter
from typing import IO, Any

from eventsourcing.persistence import IntegrityError, Tracking

from projections import pipes
from projections.store import COLUMNS, ReadModelStore, Writes, open_spec, table_rows


def encode(doc: Any) -> bytes:
    """A request or answer as a pickle without a memo (``Pickler.fast``): rows are trees
    of tuples and strings, never cyclic, and the memo would cost more than it saves.
    Measured on batches of the 1M-event replay, per 50,000 events: 12 ms to make, 33 ms
    for the child to load, where JSON took 14 ms and 53 ms (orjson) — the child is the
    busier of the two. Both ends are the same interpreter (``sys.executable``)."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, pickle.HIGHEST_PROTOCOL)
    pickler.fast = True
    pickler.dump(doc)
    return out.getvalue()


class WriterError(RuntimeError):
    """The writer process failed a request or died (its own error is in the message)."""


class WriterProcess:
    """``commit`` and ``create_indexes`` of a store, run by a child process in request
    order; each returns a ``Future`` that settles when the child has answered."""

    def __init__(self, store: ReadModelStore, shard_fd: int | None = None) -> None:
        """``shard_fd``: the read end of the pipe from the second applier
        (``projections.shard``), whose share of a batch a commit may ask to add."""
        self.proc = pipes.spawn("projections.writer", stdin=True, fds=(shard_fd,))
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        # One thread sends requests and waits for answers, so the caller goes on applying.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="projection-writer")
        # After a failed request every later one is refused unsent: a batch committed
        # after a failed one would move the position past events never applied.
        self._failed: str | None = None
        self._pool.submit(self._call, store.writer_spec())  # answered before any request

    def commit(self, writes: Writes, tracking: Tracking, split: bool = False) -> Future[None]:
        """``split``: add the second applier's share of this batch (the same position)."""
        return self._pool.submit(self._commit, writes, tracking, split)

    def create_indexes(self) -> Future[None]:
        return self._pool.submit(self._call, {"op": "create_indexes"})

    def _commit(self, writes: Writes, tracking: Tracking, split: bool) -> None:
        self._call({"op": "commit", "rows": table_rows(writes), "split": split,
                    "tracking": [tracking.application_name, tracking.notification_id]})

    def _call(self, request: Any) -> None:
        if self._failed is not None:
            raise WriterError(f"not sent: an earlier request failed ({self._failed})")
        try:
            self._send_and_check(request)
        except BaseException as e:
            self._failed = f"{type(e).__name__}: {e}"
            raise

    def _send_and_check(self, request: Any) -> None:
        try:
            pipes.send(self._in, encode(request))
            frame = pipes.receive(self._out)
        except (BrokenPipeError, ValueError):  # ValueError: the pipe was closed
            frame = None
        if frame is None:
            raise WriterError(f"the writer process died (exit code {self.proc.poll()})")
        answer = pickle.loads(frame)
        if "error" in answer:
            # A position that does not move forward is the store's IntegrityError, here too.
            kind = IntegrityError if answer["error"] == "IntegrityError" else WriterError
            raise kind(f"writer process: {answer['error']}: {answer['message']}")

    def close(self) -> None:
        """Wait for the requests sent, then let the child finish (or stop it if it hangs)."""
        self._pool.shutdown(wait=True)
        with contextlib.suppress(BrokenPipeError):
            self._in.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._out.close()

    def __enter__(self) -> WriterProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _answer(out: IO[bytes], answer: dict[str, Any]) -> None:
    pipes.send(out, encode(answer))


def _single_threaded_sqlite() -> None:
    """Configure the SQLite library of this process for its one connection on one thread:
    no per-connection mutexes (``SQLITE_CONFIG_MULTITHREAD``) and no memory statistics,
    which take a global mutex on every allocation (``SQLITE_CONFIG_MEMSTATUS`` off).
    About 7 % of the writer's work (measured on the 1M-event batches: 4.7 → 4.3 s of
    CPU). ``sqlite3_config`` is only allowed before the library initialises, so it is
    shut down first, before this process opens any connection. Where the library cannot
    be found by name (another build of Python), nothing changes."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return
    lib = ctypes.CDLL(name)
    sqlite_config_multithread, sqlite_config_memstatus = 2, 9
    if lib.sqlite3_shutdown() == 0:
        lib.sqlite3_config(sqlite_config_multithread)
        lib.sqlite3_config(sqlite_config_memstatus, ctypes.c_int(0))
    lib.sqlite3_initialize()


#: Where ``seq`` stands in each append-only table's rows.
_SEQ = {t: cols.index("seq") for t, cols in COLUMNS.items() if "seq" in cols}


def _with_share(tables: dict[str, list[Any]], shares: pipes.Receiver | None,
                end: int) -> dict[str, list[Any]]:
    """A batch's rows with the second applier's share of it added, in log order again:
    appended out of order, keyed rows would land inside the b-tree pages just written and
    split them (a sort of two sorted runs is a merge). The shares' keys are disjoint by
    construction (``projections.routing``)."""
    frame = shares.get() if shares is not None else None
    if frame is None:
        raise WriterError(f"the second applier ended before its share of the batch to {end}")
    share = pickle.loads(frame)
    if share["end"] != end:
        raise WriterError(f"the second applier sent the batch to {share['end']}, not {end}")
    for table, rows in share["rows"].items():
        merged = [*tables.get(table, ()), *rows]
        if table in _SEQ:
            merged.sort(key=itemgetter(_SEQ[table]))
        tables[table] = merged
    return tables


def _serve(shard_fd: int | None = None) -> None:
    pipes.die_with_parent()
    # Requests are made of millions of small acyclic objects: a collection is pure cost.
    gc.disable()
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    spec = pipes.receive(inp)
    if spec is None:
        return
    try:
        spec = pickle.loads(spec)
        if "sqlite" in spec:
            _single_threaded_sqlite()
        store = open_spec(spec)
    except Exception as e:  # reported to the parent, which raises it
        _answer(out, {"error": type(e).__name__, "message": str(e)})
        return
    _answer(out, {"ok": True})
    # The second applier's shares, received on a thread so that it never waits for us.
    shares = None
    if shard_fd is not None:
        shares = pipes.Receiver(os.fdopen(shard_fd, "rb"), depth=2)
    try:
        while (frame := pipes.receive(inp)) is not None:
            request = pickle.loads(frame)
            try:
                if request["op"] == "commit":
                    tables = request["rows"]
                    if request.get("split"):
                        tables = _with_share(tables, shares, request["tracking"][1])
                    store.commit_rows(tables, Tracking(*request["tracking"]), alone=True)
                elif request["op"] == "create_indexes":
                    store.create_indexes()
                else:
                    raise ValueError(f"unknown request {request['op']!r}")
            except Exception as e:  # reported to the parent, which raises it
                _answer(out, {"error": type(e).__name__, "message": str(e)})
            else:
                _answer(out, {"ok": True})
    except BrokenPipeError:  # the runner stopped: nothing left to answer
        pass
    finally:
        store.close()


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else None)
