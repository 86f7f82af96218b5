"""One test suite for the ``Log`` contract; every backend subclasses ``LogContract``.

Subclasses provide ``open_log(path, clock)``; everything else is shared, so SQLite and
Kafka are held to exactly the same promises (ledger/log/base.py).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger.checkpoint import open_checkpoint
from ledger.clock import FixedClock
from ledger.log.base import Log, Prepared, StaleLog
from ledger.merkle import inclusion_proof, leaf_hash, root_of, verify_inclusion
from ledger.sequencer import CheckpointSigner, origin
from ledger.signing import generate_key

SIGNER = CheckpointSigner(generate_key())
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def prepared(controller: str = "NO-1", n: int = 0) -> Prepared:
    eid = str(uuid.uuid4())
    body = f'{{"controller":"{controller}","event_id":"{eid}","n":{n}}}'.encode()
    return Prepared(eid, controller, "consent.given", "crm", "2026-11-20T12:00:00.000Z",
                    body, hashlib.sha256(body).digest())


class LogContract:
    """Promises every log backend keeps."""

    def open_log(self, path: Path, clock: FixedClock) -> Log:  # pragma: no cover
        raise NotImplementedError

    def forget_derived_state(self, path: Path) -> None:
        """Drop what the backend can rebuild (Kafka: its index); SQLite keeps it all."""

    @pytest.fixture
    def clock(self) -> FixedClock:
        return FixedClock(T0)

    @pytest.fixture
    def log(self, tmp_path: Path, clock: FixedClock) -> Any:
        log = self.open_log(tmp_path, clock)
        yield log
        log.close()

    def test_indexes_are_dense_per_controller(self, log: Log) -> None:
        batch = [prepared("NO-1"), prepared("DK-2"), prepared("NO-1"), prepared("DK-2"),
                 prepared("NO-1")]
        stored = log.append(batch, "2026-11-20T12:00:00.000Z")
        assert [(s.controller, s.index) for s in stored] == [
            ("NO-1", 0), ("DK-2", 0), ("NO-1", 1), ("DK-2", 1), ("NO-1", 2)]
        seqs = [s.seq for s in stored]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        more = log.append([prepared("NO-1")], "2026-11-20T12:00:01.000Z")
        assert more[0].index == 3 and more[0].seq > seqs[-1]
        assert log.size("NO-1") == 4 and log.size("DK-2") == 2
        assert log.controllers() == ["DK-2", "NO-1"]

    def test_stored_events_read_back_exactly(self, log: Log) -> None:
        batch = [prepared() for _ in range(10)]
        log.append(batch, "2026-11-20T12:00:00.000Z")
        got = list(log.events(controller="NO-1"))
        assert [g.body for g in got] == [b.body for b in batch]
        assert all(g.leaf_hash == leaf_hash(g.body) for g in got)
        assert all(g.received_at == "2026-11-20T12:00:00.000Z" for g in got)
        found = log.lookup("NO-1", [batch[3].event_id, "no-such-id"])
        assert list(found) == [batch[3].event_id] and found[batch[3].event_id].index == 3
        at = log.event_at("NO-1", 7)
        assert at is not None and at.event_id == batch[7].event_id
        assert log.event_at("NO-1", 10) is None
        assert [e.event_id for e in log.events(after_seq=got[4].seq)] == [
            b.event_id for b in batch[5:]]

    def test_roots_and_proofs_match_rfc9162(self, log: Log) -> None:
        batch = [prepared() for _ in range(37)]
        log.append(batch, "2026-11-20T12:00:00.000Z")
        log.checkpoint_due(force=True)
        cp = log.latest_checkpoint("NO-1")
        assert cp is not None and cp.size == 37
        leaves = [leaf_hash(b.body) for b in batch]
        assert cp.root == root_of(leaves)
        opened = open_checkpoint(cp.note, [SIGNER.verifier_key], origin=origin("NO-1"))
        assert (opened.size, opened.root) == (37, cp.root)
        get = log.node_getter("NO-1")
        for i in (0, 1, 17, 36):
            verify_inclusion(leaves[i], i, 37, inclusion_proof(get, i, 37), cp.root)

    def test_checkpoint_at_least_every_1000_events(self, log: Log) -> None:
        for _ in range(5):
            log.append([prepared() for _ in range(500)], "2026-11-20T12:00:00.000Z")
        sizes = [c.size for c in log.checkpoints("NO-1")]
        gaps = [b - a for a, b in zip([0, *sizes], sizes, strict=False)]
        assert sizes and max(gaps) <= 1000, sizes
        assert 2500 - sizes[-1] < 1000

    def test_checkpoint_every_second_while_events_arrive(
        self, log: Log, clock: FixedClock
    ) -> None:
        log.append([prepared()], "2026-11-20T12:00:00.000Z")
        first = log.checkpoints("NO-1")
        log.append([prepared()], "2026-11-20T12:00:00.000Z")
        assert log.checkpoint_due() == [], "younger than a second: nothing due yet"
        clock.advance(timedelta(seconds=1))
        due = log.checkpoint_due()
        assert [c.size for c in due] == [2]
        assert len(log.checkpoints("NO-1")) == len(first) + 1
        clock.advance(timedelta(seconds=5))
        assert log.checkpoint_due() == [], "nothing grew: no new checkpoint"

    def test_reopen_continues_the_same_tree(self, tmp_path: Path, clock: FixedClock) -> None:
        log = self.open_log(tmp_path, clock)
        first = [prepared() for _ in range(21)]
        log.append(first, "2026-11-20T12:00:00.000Z")
        log.close()
        log = self.open_log(tmp_path, clock)
        second = [prepared() for _ in range(12)]
        stored = log.append(second, "2026-11-20T12:00:00.000Z")
        assert stored[0].index == 21
        log.checkpoint_due(force=True)
        cp = log.latest_checkpoint("NO-1")
        assert cp is not None
        assert cp.root == root_of([leaf_hash(p.body) for p in first + second])
        log.close()

    def test_cosignatures_are_kept_beside_their_checkpoint(
            self, tmp_path: Path, clock: FixedClock) -> None:
        log = self.open_log(tmp_path, clock)
        log.append([prepared() for _ in range(3)], "2026-11-20T12:00:00.000Z")
        log.checkpoint_due(force=True)
        log.append([prepared()], "2026-11-20T12:00:00.000Z")
        log.checkpoint_due(force=True)
        assert log.latest_cosigned("NO-1") is None
        line = "— w.example/1 AAAAAQAAAABlU/EA" + "A" * 84 + "\n"
        other = "— w.example/2 AAAAAgAAAABlU/EA" + "B" * 84 + "\n"
        log.add_cosignatures("NO-1", 3, [line])
        log.add_cosignatures("NO-1", 3, [line, other])  # again: one line per witness key
        assert log.cosignatures("NO-1", 3) == [line, other]
        assert log.cosignatures("NO-1", 4) == []
        assert log.latest_cosigned("NO-1").size == 3  # type: ignore[union-attr]
        log.close()
        self.forget_derived_state(tmp_path)
        log = self.open_log(tmp_path, clock)
        try:
            assert log.cosignatures("NO-1", 3) == [line, other]
            assert log.latest_cosigned("NO-1").size == 3  # type: ignore[union-attr]
        finally:
            log.close()

    def test_a_failed_append_leaves_no_trace(self, log: Log) -> None:
        ok = prepared()
        log.append([ok], "2026-11-20T12:00:00.000Z")
        clash = Prepared(ok.event_id, "NO-1", "consent.given", "crm",
                         ok.occurred_at, b'{"x":1}', b"\0" * 32)
        with pytest.raises(Exception):  # noqa: B017 - backends raise their own integrity error
            log.append([prepared(), clash], "2026-11-20T12:00:00.000Z")
        assert log.size("NO-1") == 1
        again = log.append([prepared()], "2026-11-20T12:00:00.000Z")
        assert again[0].index == 1, "no index was burnt by the failed batch"

    def test_stale_writer_is_told(self, log: Log) -> None:
        log.append([prepared()], "2026-11-20T12:00:00.000Z")
        seq = log.last_seq()
        log.append([prepared()], "2026-11-20T12:00:00.000Z")
        with pytest.raises(StaleLog):
            log.append([prepared()], "2026-11-20T12:00:00.000Z", expect_seq=seq)
        assert log.size("NO-1") == 2

    def test_event_ids_are_unique_per_controller(self, log: Log) -> None:
        """Two controllers may hold the same event_id (idempotency is per controller);
        one controller may not hold it twice."""
        mine = prepared("NO-1")
        body = mine.body.replace(b'"NO-1"', b'"DK-2"')
        theirs = Prepared(mine.event_id, "DK-2", mine.type, mine.producer, mine.occurred_at,
                          body, hashlib.sha256(body).digest())
        log.append([mine, theirs], "2026-11-20T12:00:00.000Z")
        assert log.lookup("NO-1", [mine.event_id])[mine.event_id].controller == "NO-1"
        assert log.lookup("DK-2", [mine.event_id])[mine.event_id].body == body
        assert log.lookup("SE-3", [mine.event_id]) == {}
        with pytest.raises(Exception):  # noqa: B017 - backends raise their own integrity error
            log.append([Prepared(mine.event_id, "NO-1", mine.type, mine.producer,
                                 mine.occurred_at, b'{"x":2}', b"\1" * 32)],
                       "2026-11-20T12:00:00.000Z")
        assert log.size("NO-1") == 1 and log.size("DK-2") == 1
