"""Fixtures for the projection suites.

- ``store_factory`` (parametrised ``sqlite`` / ``postgres``): makes fresh, empty read-model
  stores; every test that takes it runs on both backends (the PostgreSQL runs are marked
  ``postgres``).
- ``pg_dsn`` (session): env ``AUDITLEDGER_PG_DSN`` if set, else a private cluster started
  with ``infra/postgres/pg`` and stopped at the end. If PostgreSQL cannot start, the tests
  FAIL with the reason: they never skip.
- ``scenario``: a ``projection_streams.Scenario`` (a ledger with one controller).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from projection_streams import Scenario

from projections.store import PostgresStore, ReadModelStore, SQLiteStore

REPO = Path(__file__).resolve().parents[2]
PG_SCRIPT = REPO / "infra" / "postgres" / "pg"


# -- PostgreSQL --------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    env = os.environ.get("AUDITLEDGER_PG_DSN")
    if env:
        yield env
        return
    pg_dir = Path(tempfile.mkdtemp(prefix="auditledger-pg-"))
    proc = subprocess.run([str(PG_SCRIPT), "start", "--dir", str(pg_dir)],
                          capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        pytest.fail(f"PostgreSQL did not start ({PG_SCRIPT}): {proc.stderr.strip()[-2000:]}",
                    pytrace=False)
    dsn = proc.stdout.strip().splitlines()[-1]
    try:
        yield dsn
    finally:
        subprocess.run([str(PG_SCRIPT), "stop", "--dir", str(pg_dir)], capture_output=True,
                       timeout=120)
        shutil.rmtree(pg_dir, ignore_errors=True)


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
