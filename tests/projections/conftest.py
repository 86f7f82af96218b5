"""Fixtures for the projection suites.

- ``store_factory`` (parametrised ``sqlite`` / ``postgres``): makes fresh, empty read-model
  stores; every test that takes it runs on both backends (the PostgreSQL runs are marked
  ``postgres``).
- ``pg_dsn`` (session, tests/conftest.py): a real PostgreSQL server.
- ``scenario``: a ``projection_streams.Scenario`` (a ledger with one controller).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from projection_streams import Scenario

from projections.store import PostgresStore, ReadModelStore, SQLiteStore

StoreFactory = Callable[[], ReadModelStore]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    made: list[ReadModelStore] = []

    def make() -> ReadModelStore:
        if request.param == "sqlite":
            store: ReadModelStore = SQLiteStore(tmp_path / f"rm-{len(made)}.sqlite")
        else:
            dsn = request.getfixturevalue("pg_dsn")
            store = PostgresStore(dsn, schema=f"t_{uuid.uuid4().hex[:12]}")
        made.append(store)
        return store

    yield make
    for s in made:
        s.close()
        if isinstance(s, PostgresStore):
            with psycopg.connect(s.dsn, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{s.schema}" CASCADE')


@pytest.fixture
def store(store_factory: StoreFactory) -> ReadModelStore:
    return store_factory()


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    s = Scenario(tmp_path)
    yield s
    s.close()
