"""Read-model stores: one ``ReadModelStore`` seam, a SQLite and a PostgreSQL backend.

Both backends *are* the eventsourcing library's tracking recorders
(``SQLiteTrackingRecorder`` / ``PostgresTrackingRecorder``, single-row tracking): a batch of
read-model writes and the upstream position it reaches are committed in ONE transaction
(``commit``). The library's tracking upsert only moves a position forward
(``... WHERE notification_id < new``); a second writer, or a replay of a batch already
applied, finds nothing to update, raises ``IntegrityError`` and rolls the whole batch
back. That is the exactly-once guarantee: state and position can never disagree.

The tables are deliberately few and generic, so one shared SQL text serves both engines and
one contract test suite (``tests/projections/test_store_contract.py``) runs on both:

- ``entities(kind, controller, key, doc)`` — mutable aggregates folded from events
  (controllers, producers, recipients, activities, rights requests, breaches, ...);
- ``consents(controller, subject, purpose, at, seq, event_id, action, doc)`` — the consent
  history, append-only, so the state at any instant (``as_of``) is a fold of a few rows;
- ``records(controller, kind, seq, at, subject, key, event_id, doc)`` — append-only facts:
  processing operations, disclosures, transfers (with their verdict);
- ``findings(controller, seq, code, doc)`` — findings decided when their event is applied.

``doc`` is canonical JSON (sorted keys), so ``dump()`` of a rebuild is byte-identical to the
live store. Deadlines and "now"-dependent states are never stored (see docs/projections.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import orjson
from eventsourcing.persistence import Tracking

#: The read-model tables and their primary keys, in dump order.
TABLES: dict[str, tuple[str, ...]] = {
    "entities": ("kind", "controller", "key"),
    "consents": ("controller", "subject", "purpose", "seq"),
    "records": ("controller", "kind", "seq"),
    "findings": ("controller", "seq", "code"),
}
COLUMNS: dict[str, tuple[str, ...]] = {
    "entities": ("kind", "controller", "key", "doc"),
    "consents": ("controller", "subject", "purpose", "at", "seq", "event_id", "action", "doc"),
    "records": ("controller", "kind", "seq", "at", "subject", "key", "event_id", "doc"),
    "findings": ("controller", "seq", "code", "doc"),
}

#: Every field of a record's view, by kind: a stored ``doc`` holds only those that are
#: not null (and never ``subject``, ``occurred_at``, ``event_id``, which are columns);
#: ``records()`` gives them all back. A third of the bytes a replay writes, saved.
RECORD_FIELDS: dict[str, tuple[str, ...]] = {
    "processing": ("activity_id", "basis", "purpose", "data_categories", "operation",
                   "subject_count", "special_category_condition"),
    "disclosure": ("recipient_id", "activity_id", "data_categories", "subject_count", "basis",
                   "purpose", "reference"),
    "transfer": ("recipient_id", "destination_country", "mechanism", "data_categories",
                 "activity_id", "tia_ref", "recurring", "count", "purpose", "judged_on",
                 "valid", "reason", "occasional_only", "exporter_country", "contract_date",
                 "warnings"),
    "erasure": ("request_id", "keys_destroyed_at", "key_ids", "reason"),
}

# One DDL for both engines: TEXT and BIGINT mean the same thing to SQLite and PostgreSQL.
DDL = [
    "CREATE TABLE IF NOT EXISTS entities (kind TEXT NOT NULL, controller TEXT NOT NULL,"
    " key TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (kind, controller, key)){table_opts}",
    # consents: a heap in insertion (log) order, its key a separate unique index. Consent
    # rows arrive in random subject order; in a WITHOUT ROWID table every insert moves whole
    # rows around a b-tree leaf, while here it appends the row and inserts a short index
    # entry — and a rebuild from empty builds that index once, sorted, at the end.
    "CREATE TABLE IF NOT EXISTS consents (controller TEXT NOT NULL, subject TEXT NOT NULL,"
    " purpose TEXT NOT NULL, at TEXT NOT NULL, seq BIGINT NOT NULL, event_id TEXT NOT NULL,"
    " action TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS records (controller TEXT NOT NULL, kind TEXT NOT NULL,"
    " seq BIGINT NOT NULL, at TEXT NOT NULL, subject TEXT, key TEXT, event_id TEXT NOT NULL,"
    " doc TEXT NOT NULL, PRIMARY KEY (controller, kind, seq)){table_opts}",
    "CREATE TABLE IF NOT EXISTS findings (controller TEXT NOT NULL, seq BIGINT NOT NULL,"
    " code TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (controller, seq, code)){table_opts}",
    # Not a read model: how the process applying the events is doing (``put_status``).
    # Beside the positions, so another process (the API's /readyz) can read it; never
    # dumped, never reset by a rebuild.
    "CREATE TABLE IF NOT EXISTS projection_status (name TEXT NOT NULL PRIMARY KEY,"
    " doc TEXT NOT NULL){table_opts}",
]
#: Indexes a rebuild from empty drops and builds again after the load (``bulk_load``):
#: building a b-tree once from sorted keys costs a fraction of a million random inserts.
INDEXES: dict[str, str] = {
    "consents_key": "CREATE UNIQUE INDEX IF NOT EXISTS consents_key"
    " ON consents (controller, subject, purpose, seq)",
    "records_subject": "CREATE INDEX IF NOT EXISTS records_subject"
    " ON records (controller, subject) WHERE subject IS NOT NULL",
}
# SQLite: WITHOUT ROWID keeps each table a single b-tree on its primary key (a rowid table
# would maintain the rows and a separate key index: twice the writes per row).
SQLITE_TABLE_OPTS = " WITHOUT ROWID"
#: ``PRAGMA user_version`` of the SQLite layout above; a store with another layout is
#: emptied on open (read models are derived: the runner rebuilds them from the log).
SQLITE_LAYOUT = 3


def dumps(doc: Any) -> str:
    """Canonical JSON text: sorted keys, no whitespace. Byte-identical rebuilds rely on it."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()


def _text(doc: Any) -> str:
    return doc if isinstance(doc, str) else dumps(doc)


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


#: A batch's rows by table name, in ``COLUMNS`` order (tuples, or lists once decoded).
Tables = dict[str, Sequence[Sequence[Any]]]


@dataclass
class Writes:
    """Everything one batch changes, written in one transaction with its position."""

    # Every row's ``doc`` (its last column) is a JSON-able dict or its canonical JSON text.
    entities: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    consents: list[tuple[Any, ...]] = field(default_factory=list)
    records: list[tuple[Any, ...]] = field(default_factory=list)
    findings: list[tuple[Any, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entities) + len(self.consents) + len(self.records) + len(self.findings)


@runtime_checkable
class ReadModelStore(Protocol):
    """What projections write and queries read. Contract (tests/projections):

    - ``commit(writes, tracking)`` MUST write every row and the position in one
      transaction, and MUST raise (writing nothing) when ``tracking`` does not move the
      position of ``tracking.application_name`` forward;
    - ``max_tracking_id(name)`` is the last committed position (``None`` before any);
    - reads see only committed state; ``dump()`` is canonical (same rows, same bytes, on
      every backend);
    - ``drop_indexes()`` / ``create_indexes()`` remove the ``indexes_after_load`` around a
      load into an empty store and build every one of ``INDEXES`` that is missing;
      queries stay correct without them (only slower).
    """

    #: The secondary indexes a load into an empty store drops first and builds near its
    #: end: both, on both engines — a million random b-tree inserts cost more than one
    #: sorted build (measured: docs/benchmarks.md, "Projections").
    indexes_after_load: tuple[str, ...]

    def commit(self, writes: Writes, tracking: Tracking) -> None: ...

    def commit_rows(self, tables: Tables, tracking: Tracking, alone: bool = False) -> None:
        """``commit`` of rows already shaped by ``table_rows``; ``alone``: the calling
        process has no other busy thread (the writer process, ``projections.writer``)."""
        ...

    def writer_spec(self) -> dict[str, str]:
        """How a writer process opens this same store (``open_spec``)."""
        ...

    def max_tracking_id(self, application_name: str) -> int | None: ...

    def wait(
        self, application_name: str, notification_id: int | None, timeout: float = 1.0
    ) -> None: ...

    def entity(self, kind: str, controller: str, key: str) -> Any | None: ...

    def entities(self, kind: str, controller: str | None = None) -> list[Any]: ...

    def consent_rows(self, controller: str, subject: str) -> list[tuple[Any, ...]]: ...

    def controller_consent_rows(self, controller: str) -> list[tuple[Any, ...]]:
        """``(subject, purpose, at, seq, event_id, action, doc)`` of every subject of
        ``controller`` (the consent overview and the report), ``doc`` parsed."""
        ...

    def records(
        self,
        controller: str,
        kind: str,
        subject: str | None = None,
        key: str | None = None,
        limit: int | None = None,
    ) -> list[Any]: ...

    def findings(self, controller: str) -> list[Any]: ...

    def findings_between(self, controller: str, after: int, upto: int) -> list[Any]: ...

    def put_status(self, name: str, doc: dict[str, Any]) -> None:
        """Record how the runner ``name`` is doing (its own transaction, outside any
        batch): see ``ProjectionRunner.report``."""
        ...

    def get_status(self, name: str) -> dict[str, Any] | None: ...

    def controllers(self) -> list[str]: ...

    def dump(self) -> bytes: ...

    def reset(self) -> None: ...

    def drop_indexes(self) -> None: ...

    def create_indexes(self) -> None: ...

    def close(self) -> None: ...


class _SQLText:
    """SQL shared by both engines; ``mark`` is the DB-API placeholder (``?`` / ``%s``)."""

    mark = "?"
    rows_of_json = "json_each(?)"
    # One column of a row of the JSON array. ``json_extract`` with a constant path gives a
    # JSON string as its text and a JSON number as an INTEGER; documents arrive as
    # canonical JSON text, so the stored bytes are exactly the ones the projection wrote.
    # (A nested object would cost SQLite a re-render per row: about a third more.)
    column = "json_extract(value, '$[{i}]')"
    bigint_column = column  # a JSON number comes out as an INTEGER already

    def __init__(self) -> None:
        m = self.mark
        #: One statement per table and batch: ``INSERT … SELECT`` over the batch sent as
        #: one JSON array of rows (see ``SQLiteStore._write_sqlite``).
        self.insert_json = {t: self._insert_json(t) for t in COLUMNS}
        #: One row per execution (``executemany``).
        self.insert_sql = {t: self._insert_one(t) for t in COLUMNS}
        self.entity_sql = f"SELECT doc FROM entities WHERE kind={m} AND controller={m} AND key={m}"
        self.entities_of = (
            f"SELECT doc FROM entities WHERE kind={m} AND controller={m} ORDER BY key"
        )
        self.entities_all = f"SELECT doc FROM entities WHERE kind={m} ORDER BY controller, key"
        self.consent_rows_sql = (
            "SELECT purpose, at, seq, event_id, action, doc FROM consents"
            f" WHERE controller={m} AND subject={m} ORDER BY purpose, at, seq"
        )
        self.controller_consents_sql = (
            "SELECT subject, purpose, at, seq, event_id, action, doc FROM consents"
            f" WHERE controller={m} ORDER BY subject, purpose, at, seq"
        )
        self.findings_sql = (
            f"SELECT code, doc FROM findings WHERE controller={m} ORDER BY seq, code")
        self.findings_between_sql = (
            f"SELECT code, doc FROM findings WHERE controller={m} AND seq>{m} AND seq<={m}"
            " ORDER BY seq, code")
        self.controllers_sql = "SELECT key FROM entities WHERE kind='controller' ORDER BY key"
        self.status_sql = f"SELECT doc FROM projection_status WHERE name={m}"
        self.put_status_sql = (f"INSERT INTO projection_status (name, doc) VALUES ({m}, {m})"
                               " ON CONFLICT (name) DO UPDATE SET doc = excluded.doc")


    def _insert_one(self, table: str) -> str:
        cols = COLUMNS[table]
        sql = (f"INSERT INTO {table} ({', '.join(cols)})"
               f" VALUES ({', '.join([self.mark] * len(cols))})")
        if table == "entities":
            sql += " ON CONFLICT (kind, controller, key) DO UPDATE SET doc = excluded.doc"
        return sql

    def _insert_json(self, table: str) -> str:
        cols = COLUMNS[table]
        values = ", ".join((self.bigint_column if c == "seq" else self.column).format(i=i)
                           for i, c in enumerate(cols))
        sql = f"INSERT INTO {table} ({', '.join(cols)}) SELECT {values} FROM {self.rows_of_json}"
        if table == "entities":  # keys are unique within a batch: one upsert per key
            sql += (" WHERE true ON CONFLICT (kind, controller, key)"
                    " DO UPDATE SET doc = excluded.doc")
        return sql


class _StoreBase(_SQLText):
    """The engine-independent half: SQL text, row shaping, dump."""

    indexes_after_load: tuple[str, ...] = tuple(INDEXES)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def entity(self, kind: str, controller: str, key: str) -> Any | None:
        rows = self._execute(self.entity_sql, (kind, controller, key))
        return loads(rows[0][0]) if rows else None


    def entities(self, kind: str, controller: str | None = None) -> list[Any]:
        if controller is None:
            rows = self._execute(self.entities_all, (kind,))
        else:
            rows = self._execute(self.entities_of, (kind, controller))
        return [loads(r[0]) for r in rows]

    def consent_rows(self, controller: str, subject: str) -> list[tuple[Any, ...]]:
        """``(purpose, at, seq, event_id, action, doc)`` rows, ``doc`` parsed."""
        return [
            (p, at, seq, eid, action, loads(doc))
            for p, at, seq, eid, action, doc in self._execute(
                self.consent_rows_sql, (controller, subject)
            )
        ]

    def controller_consent_rows(self, controller: str) -> list[tuple[Any, ...]]:
        """``(subject, purpose, at, seq, event_id, action, doc)`` rows, ``doc`` parsed."""
        return [(subj, p, at, seq, eid, action, loads(doc))
                for subj, p, at, seq, eid, action, doc in self._execute(
                    self.controller_consents_sql, (controller,))]

    def records(
        self,
        controller: str,
        kind: str,
        subject: str | None = None,
        key: str | None = None,
        limit: int | None = None,
    ) -> list[Any]:
        m = self.mark
        where, args = [f"controller={m}", f"kind={m}"], [controller, kind]
        if subject is not None:
            where.append(f"subject={m}")
            args.append(subject)
        if key is not None:
            where.append(f"key={m}")
            args.append(key)
        sql = (f"SELECT at, subject, event_id, doc FROM records WHERE {' AND '.join(where)}"
               " ORDER BY seq")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        blank = dict.fromkeys(RECORD_FIELDS.get(kind, ()))
        out = []
        for at, subj, event_id, doc in self._execute(sql, args):
            view = {**blank, **loads(doc)}
            view["subject"], view["occurred_at"], view["event_id"] = subj, at, event_id
            out.append(view)
        return out

    def findings(self, controller: str) -> list[Any]:
        """Finding documents; ``code`` and ``controller`` come from their columns (the
        projection stores the rest)."""
        return [{**loads(doc), "code": code, "controller": controller}
                for code, doc in self._execute(self.findings_sql, (controller,))]

    def findings_between(self, controller: str, after: int, upto: int) -> list[Any]:
        """The stored findings of events ``after < seq <= upto`` (as ``findings``): rows
        are only ever inserted, each with its event's position, so a reader that knows
        what it read up to ``after`` reads only what is new (the alert scheduler)."""
        return [{**loads(doc), "code": code, "controller": controller}
                for code, doc in self._execute(self.findings_between_sql,
                                               (controller, after, upto))]


    def controllers(self) -> list[str]:
        return [r[0] for r in self._execute(self.controllers_sql)]

    def get_status(self, name: str) -> dict[str, Any] | None:
        rows = self._execute(self.status_sql, (name,))
        return loads(rows[0][0]) if rows else None


    def iter_dump(self) -> Iterator[bytes]:
        for table, pk in TABLES.items():
            cols = ", ".join(COLUMNS[table])
            yield f"# {table}\n".encode()
            for row in self._execute(f"SELECT {cols} FROM {table} ORDER BY {', '.join(pk)}"):
                yield orjson.dumps(list(row)) + b"\n"

    def dump(self) -> bytes:
        """Every read-model row, canonical, in primary-key order (tracking excluded)."""
        return b"".join(self.iter_dump())


def table_rows(writes: Writes) -> Tables:
    """The rows of a batch by table, entities first, empty tables left out, every ``doc``
    as canonical text (the projection writes text already; a dict is serialised here)."""
    tables: Tables = {}
    if writes.entities:
        tables["entities"] = [
            (k, c, key, _text(doc)) for (k, c, key), doc in writes.entities.items()]
    for table in ("consents", "records", "findings"):
        rows = getattr(writes, table)
        if rows:
            if not all(isinstance(row[-1], str) for row in rows):
                rows = [(*row[:-1], _text(row[-1])) for row in rows]
            tables[table] = rows
    return tables


def _json_array(rows: Sequence[Sequence[Any]]) -> bytes:
    """A batch's rows of one table as one JSON array."""
    return orjson.dumps(rows)


def _prepare_sqlite_file(path: str) -> None:
    """Create a new read-model file with 16 KiB pages, or empty one of an older layout.

    16 KiB pages (SQLite's default is 4 KiB) make a million-row replay write a third of the
    b-tree pages and WAL frames; the size can only be chosen before the first table exists.
    A file of another layout (``user_version``) loses its read models and positions, so
    the runner rebuilds them from the log — they are derived data.
    """
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            conn.execute("PRAGMA page_size=16384")
            conn.execute("PRAGMA journal_mode=WAL")
        elif conn.execute("PRAGMA user_version").fetchone()[0] != SQLITE_LAYOUT:
            conn.execute("BEGIN IMMEDIATE")
            for table in TABLES:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
            if "tracking" in tables:
                conn.execute("DELETE FROM tracking WHERE application_name <> '__migration__'")
            conn.execute("COMMIT")
    finally:
        conn.close()


class SQLiteStore(_StoreBase):
    """Read models in one SQLite file (WAL), the default: ``DIR/readmodels.sqlite``."""

    mark = "?"

    def __init__(self, path: Path | str, create: bool = True) -> None:
        """``create=False``: attach to a store that exists, changing nothing on open (a
        writer process must not, say, build the indexes its runner dropped for a load)."""
        from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

        _SQLText.__init__(self)
        self.path = str(path)
        if create:
            _prepare_sqlite_file(self.path)
        self.datastore = SQLiteDatastore(self.path, pool_size=2, max_overflow=4, lock_timeout=30)
        pool = self.datastore.pool
        connect = pool._create_connection

        def tuned() -> Any:
            # Read models are derived data: synchronous=NORMAL in WAL mode survives a
            # process crash (kill -9) with every committed batch and its position intact;
            # only an OS crash may lose the last batches, which the runner then re-applies
            # from the (equally lost) position. Consistency of rows and position holds.
            # A checkpoint every 10,000 pages (160 MB) rather than 1,000: a replay dirties
            # the same pages in batch after batch, and each checkpoint copies and syncs them.
            conn = connect()
            raw = conn._sqlite_conn
            raw.execute("PRAGMA synchronous=NORMAL")
            raw.execute("PRAGMA cache_size=-131072")
            raw.execute("PRAGMA temp_store=MEMORY")
            raw.execute("PRAGMA wal_autocheckpoint=10000")
            return conn

        pool._create_connection = tuned  # type: ignore[method-assign]
        self.recorder = SQLiteTrackingRecorder(self.datastore)
        if not create:
            return
        self.recorder.create_table()
        with self.datastore.transaction(commit=True) as c:
            for stmt in DDL:
                c.execute(stmt.format(table_opts=SQLITE_TABLE_OPTS))
            for stmt in INDEXES.values():
                c.execute(stmt)
            c.execute(f"PRAGMA user_version={SQLITE_LAYOUT}")

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            return [tuple(r) for r in c.fetchall()]

    def commit(self, writes: Writes, tracking: Tracking) -> None:
        self.commit_rows(table_rows(writes), tracking)

    def commit_rows(self, tables: Tables, tracking: Tracking, alone: bool = False) -> None:
        """Two ways to send rows, each the cheaper one where it is used. ``alone`` (the
        writer process, nothing else running in it): ``executemany``, which binds each row
        and costs SQLite about half the work of the other way. Otherwise — a commit on a
        thread of a process whose other threads are busy (the API, a runner without a
        writer process) — ONE statement per table, ``INSERT … SELECT`` over ``json_each``
        of the rows as a JSON array: the whole insert runs inside one ``sqlite3_step``,
        outside the GIL, where ``executemany`` would take the GIL back after every row and
        wait for a switch interval each time."""
        with self.datastore.transaction(commit=True) as c:
            for table, rows in tables.items():
                if alone:
                    c.executemany(self.insert_sql[table], rows)
                else:
                    c.execute(self.insert_json[table], (_json_array(rows),))
            self.recorder._insert_tracking(c, tracking)

    def put_status(self, name: str, doc: dict[str, Any]) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(self.put_status_sql, (name, dumps(doc)))

    def writer_spec(self) -> dict[str, str]:
        return {"sqlite": self.path}

    def max_tracking_id(self, application_name: str) -> int | None:
        return self.recorder.max_tracking_id(application_name)

    def wait(
        self, application_name: str, notification_id: int | None, timeout: float = 1.0
    ) -> None:
        self.recorder.wait(application_name, notification_id, timeout)

    def reset(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            for table in TABLES:
                c.execute(f"DELETE FROM {table}")
            c.execute("DELETE FROM tracking WHERE application_name <> '__migration__'")

    def drop_indexes(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            for name in self.indexes_after_load:
                c.execute(f"DROP INDEX IF EXISTS {name}")

    def create_indexes(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            for stmt in INDEXES.values():
                c.execute(stmt)

    def close(self) -> None:
        self.datastore.close()


class PostgresStore(_StoreBase):
    """Read models in PostgreSQL (production). ``dsn`` is a libpq URI or key=value string."""

    mark = "%s"
    rows_of_json = "jsonb_array_elements(%s::jsonb) AS x"
    column = "x->>{i}"
    bigint_column = "(x->>{i})::bigint"

    def __init__(
        self, dsn: str, schema: str | None = None, pool_size: int = 2, create: bool = True
    ) -> None:
        """``schema`` defaults to the DSN's ``options=-csearch_path=NAME``, else ``public``
        (so a worker process can be pointed at a schema with a DSN alone). ``create=False``:
        attach to a store that exists, changing nothing on open."""
        from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
        from psycopg.conninfo import conninfo_to_dict

        _SQLText.__init__(self)
        self.copy_sql = {
            t: f"COPY {t} ({', '.join(cols)}) FROM STDIN" for t, cols in COLUMNS.items()
        }
        info = conninfo_to_dict(dsn)
        found = re.search(r"search_path=([A-Za-z_][A-Za-z0-9_]*)", str(info.get("options", "")))
        schema = schema or (found.group(1) if found else "public")
        self.dsn = dsn
        self.schema = schema
        self.datastore = PostgresDatastore(
            dbname=str(info.get("dbname", "postgres")),
            host=str(info.get("host", "localhost")),
            port=str(info.get("port", "5432")),
            user=str(info.get("user", "postgres")),
            password=str(info.get("password", "")),
            pool_size=pool_size,
            schema=schema,
        )
        self.recorder = PostgresTrackingRecorder(
            self.datastore, tracking_table_name="projection_tracking"
        )
        if not create:
            return
        if schema != "public":
            with self.datastore.transaction(commit=True) as c:
                c.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        self.recorder.create_table()
        with self.datastore.transaction(commit=True) as c:
            c.execute(f'SET LOCAL search_path TO "{schema}"')
            for stmt in DDL:
                c.execute(stmt.format(table_opts=""))
            # Layout 1 keyed consents by a primary key; its unique index replaces it.
            c.execute("ALTER TABLE consents DROP CONSTRAINT IF EXISTS consents_pkey")
            for stmt in INDEXES.values():
                c.execute(stmt)





    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.datastore.get_connection() as conn, conn.cursor() as c:
            if self.schema != "public":
                c.execute(f'SET search_path TO "{self.schema}"')
            c.execute(sql, params, prepare=True)
            return [tuple(r.values()) for r in c.fetchall()]

    def commit(self, writes: Writes, tracking: Tracking) -> None:
        self.commit_rows(table_rows(writes), tracking)

    def commit_rows(self, tables: Tables, tracking: Tracking, alone: bool = False) -> None:
        """Append-only rows go in with ``COPY … FROM STDIN`` (psycopg formats the rows in
        C): the server only parses tab-separated text, about a third of what unpacking the
        same rows from one ``jsonb`` array cost it. Entities are upserts, which ``COPY``
        cannot do: one ``INSERT … SELECT`` over ``jsonb_array_elements`` per batch. The
        same either way (``alone`` only matters to SQLite).

        ``synchronous_commit = off`` for these transactions, the counterpart of SQLite's
        ``synchronous=NORMAL``: a server crash may lose the last commits (a fraction of a
        second), rows *and* position together, and the runner re-applies them; the
        server does not wait for its WAL flush at each batch."""
        with self.datastore.transaction(commit=True) as c:
            c.execute("SET LOCAL synchronous_commit = off")
            if self.schema != "public":
                c.execute(f'SET LOCAL search_path TO "{self.schema}"')
            for table, rows in tables.items():
                if table == "entities":
                    c.execute(self.insert_json[table], (_json_array(rows).decode(),))
                    continue
                with c.copy(self.copy_sql[table]) as copy:
                    for row in rows:
                        copy.write_row(row)
            self.recorder._insert_tracking(c, tracking)

    def put_status(self, name: str, doc: dict[str, Any]) -> None:
        with self.datastore.transaction(commit=True) as c:
            if self.schema != "public":
                c.execute(f'SET LOCAL search_path TO "{self.schema}"')
            c.execute(self.put_status_sql, (name, dumps(doc)))

    def writer_spec(self) -> dict[str, str]:
        return {"postgres": self.dsn, "schema": self.schema}

    def max_tracking_id(self, application_name: str) -> int | None:
        return self.recorder.max_tracking_id(application_name)

    def wait(
        self, application_name: str, notification_id: int | None, timeout: float = 1.0
    ) -> None:
        self.recorder.wait(application_name, notification_id, timeout)

    def reset(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            if self.schema != "public":
                c.execute(f'SET LOCAL search_path TO "{self.schema}"')
            c.execute(f"TRUNCATE {', '.join(TABLES)}")
            c.execute(
                "DELETE FROM projection_tracking WHERE application_name <> '__migration__'"
            )

    def drop_indexes(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            if self.schema != "public":
                c.execute(f'SET LOCAL search_path TO "{self.schema}"')
            for name in self.indexes_after_load:
                c.execute(f"DROP INDEX IF EXISTS {name}")

    def create_indexes(self) -> None:
        with self.datastore.transaction(commit=True) as c:
            if self.schema != "public":
                c.execute(f'SET LOCAL search_path TO "{self.schema}"')
            for stmt in INDEXES.values():
                c.execute(stmt)

    def drop(self) -> None:
        """Remove the schema and everything in it (tests use one schema each)."""
        with self.datastore.transaction(commit=True) as c:
            c.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def close(self) -> None:
        self.datastore.close()


def open_spec(spec: dict[str, str]) -> ReadModelStore:
    """The store a ``writer_spec()`` names, attached without creating anything."""
    if "postgres" in spec:
        return PostgresStore(spec["postgres"], spec["schema"], pool_size=1, create=False)
    return SQLiteStore(spec["sqlite"], create=False)


def open_store(target: str | Path) -> ReadModelStore:
    """``postgresql://…`` / ``postgres://…`` / ``host=… dbname=…`` → PostgreSQL, else a
    SQLite file path."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")) or "dbname=" in text:
        return PostgresStore(text)
    return SQLiteStore(Path(text))
