"""`auditledger bench-projections` runs the projection benchmark on both stores and prints
the figures docs/benchmarks.md records."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import orjson
import pytest

from tests.conftest import CLI


@pytest.mark.postgres
def test_bench_projections_prints_figures_for_both_stores(tmp_path: Path, pg_dsn: str) -> None:
    out = subprocess.run(
        [*CLI, "bench-projections", "--events", "2000", "--backend", "both",
         "--pg-dsn", pg_dsn, "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env={**os.environ},
    )
    assert out.returncode == 0, out.stderr
    figures = [orjson.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [f["backend"] for f in figures] == ["sqlite", "postgres"]
    for f in figures:
        assert f["events"] == 2000
        rate = f["events_per_second"]
        # events/s is events / replay time (printed rounded to 10 ms)
        assert rate > 0 and abs(rate * f["replay_seconds"] - 2000) <= rate * 0.005 + 1
        assert 0 < f["consent_p50_ms"] <= f["consent_p99_ms"]
        assert 0 < f["machine_seconds"] < 60  # the machine's phase, printed beside them
    assert (tmp_path / "log-2000.sqlite").exists()  # built once, reused by the next run
