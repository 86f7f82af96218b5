"""``ensure_topics`` waits for a broker that is still starting: kafka-python 3 says "no
broker" with ``KafkaTimeoutError``, which ``_retry`` retries until its deadline, and only
that (a wrong config must fail at once)."""

from __future__ import annotations

import itertools
import time

import pytest
from kafka import errors as kerr

from ledger.log.kafka import _retry


def test_retries_until_a_broker_answers() -> None:
    calls: list[float] = []

    def make() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise kerr.KafkaTimeoutError("Unable to bootstrap from 127.0.0.1:9")
        return "admin"

    assert _retry(make, timeout_s=10) == "admin"
    assert len(calls) == 3
    assert all(b - a >= 0.45 for a, b in itertools.pairwise(calls))  # 0.5 s apart


def test_gives_up_after_the_deadline_with_the_last_error() -> None:
    start = time.monotonic()

    def make() -> None:
        raise kerr.KafkaTimeoutError("Unable to bootstrap")

    with pytest.raises(kerr.KafkaTimeoutError, match="bootstrap"):
        _retry(make, timeout_s=1.0)
    assert 1.0 <= time.monotonic() - start < 3.0


def test_other_errors_are_not_retried() -> None:
    calls = []

    def make() -> None:
        calls.append(1)
        raise ValueError("bad bootstrap string")

    with pytest.raises(ValueError):
        _retry(make, timeout_s=10)
    assert calls == [1]
