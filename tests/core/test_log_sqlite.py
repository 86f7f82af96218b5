from __future__ import annotations

from pathlib import Path

from ledger.clock import FixedClock
from ledger.log.sqlite import SQLiteLog
from tests.log_contract import SIGNER, LogContract


class TestSQLiteLog(LogContract):
    def open_log(self, path: Path, clock: FixedClock) -> SQLiteLog:
        return SQLiteLog(path / "ledger.sqlite", SIGNER, clock)

    def test_two_writers_on_one_file_keep_indexes_dense(
        self, tmp_path: Path, clock: FixedClock
    ) -> None:
        from tests.log_contract import prepared

        a = self.open_log(tmp_path, clock)
        b = self.open_log(tmp_path, clock)
        for i in range(10):
            (a if i % 2 else b).append([prepared(), prepared()], "2026-11-20T12:00:00.000Z")
        indexes = [e.index for e in a.events(controller="NO-1")]
        assert indexes == list(range(20))
        a.checkpoint_due(force=True)
        assert a.latest_checkpoint("NO-1").size == 20  # type: ignore[union-attr]
        a.close()
        b.close()
