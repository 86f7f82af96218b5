"""Fixtures for the alert suites: a ledger scenario, its read models, an outbox, a clock
and a local webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.clock import FixedClock
from projections.alerts.outbox import Outbox
from projections.store import SQLiteStore
from tests.alerts.alerting import NOW, Receiver
from tests.projections.projection_streams import Scenario


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rx = Receiver().start()
    yield rx
    rx.stop()


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[Scenario]:
    s = Scenario(tmp_path)
    yield s
    s.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    st = SQLiteStore(tmp_path / "rm.sqlite")
    yield st
    st.close()


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    ob = Outbox(tmp_path / "alerts.sqlite")
    yield ob
    ob.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)

