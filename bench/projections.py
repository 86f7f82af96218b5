"""Projection benchmark: replay N events from the SQLite log into the read models, then the
latency of a subject's consent state, on SQLite and on PostgreSQL.

    .venv/bin/python -m bench.projections --events 1000000 [--backend sqlite|postgres|both]
        [--pg-dsn DSN] [--workdir DIR]

The log is built once per ``--workdir`` (reused when it already holds N events): events
are appended straight through ``Log.append`` — schema checks and Ed25519 verification are
the ingest benchmark's business, not this one's, so the envelopes carry a dummy ``sig``.
The replay is the real thing: ``ProjectionRunner`` reading the SQLite log in batches,
applying every projection, committing rows and position per batch.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import Progress

from bench.common import machine_seconds, percentile
from ledger.clock import FixedClock, format_rfc3339
from ledger.log.base import Prepared
from ledger.log.sqlite import SQLiteLog
from ledger.sequencer import CheckpointSigner
from ledger.signing import generate_key
from projections import queries
from projections.runner import LogSource, ProjectionRunner
from projections.store import PostgresStore, ReadModelStore, SQLiteStore

CID = "NO-921119224"
REPO = Path(__file__).resolve().parents[1]
SIG = "A" * 86


def _subject(i: int) -> str:
    return f"psn:{i:043d}"


def _envelopes(n: int, subjects: int, seed: int = 1) -> list[dict[str, Any]]:
    """A mixed stream like a busy controller's: consents and processing dominate."""
    rnd = random.Random(seed)
    t = datetime(2025, 1, 1, tzinfo=UTC)
    out: list[dict[str, Any]] = [
        {"type": "controller.registered", "data": {"name": "Bench AS", "country": "NO",
                                                   "timezone": "Europe/Oslo",
                                                   "admin_public_key": "A" * 43,
                                                   "answer_within_days": 30}},
        {"type": "recipient.registered", "data": {"recipient_id": "rcp-mailer", "name": "M",
                                                  "kind": "processor", "country": "US"}},
        {"type": "processing_activity.declared", "data": {
            "activity_id": "newsletter", "name": "Newsletter", "purposes": ["marketing"],
            "lawful_basis": "A6-1-a", "data_categories": ["contact"],
            "subject_categories": ["customers"], "recipients": ["rcp-mailer"],
            "retention": {"duration": "P2Y", "starts": "x"}, "security_measures": ["enc"]}},
    ]
    for e in out:
        e["occurred_at"] = format_rfc3339(t)
    requests = 0
    breaches = 0
    while len(out) < n:
        t += timedelta(seconds=rnd.randint(1, 30))
        s = _subject(rnd.randrange(subjects))
        k = rnd.random()
        e: dict[str, Any]
        if k < 0.30:
            e = {"type": "consent.given", "subject": s, "data": {
                "purposes": ["marketing"], "method": "web", "notice_version": "v1",
                "evidence_ref": "x"}}
        elif k < 0.38:
            e = {"type": "consent.withdrawn", "subject": s,
                 "data": {"purposes": ["marketing"], "method": "web"}}
        elif k < 0.75:
            e = {"type": "processing.performed", "subject": s, "data": {
                "activity_id": "newsletter", "basis": "A6-1-a", "data_categories": ["contact"]}}
        elif k < 0.82:
            e = {"type": "disclosure.made", "data": {"recipient_id": "rcp-mailer",
                                                     "data_categories": ["contact"]}}
        elif k < 0.87:
            e = {"type": "transfer.made", "data": {
                "recipient_id": "rcp-mailer", "destination_country": "US",
                "mechanism": rnd.choice(["dpf", "scc_2021", "none"]),
                "data_categories": ["contact"]}}
        elif k < 0.95:
            requests += 1
            if requests % 2:
                e = {"type": "rights_request.received", "subject": s, "data": {
                    "request_id": f"r{requests}", "right": "access",
                    "received_at": format_rfc3339(t)}}
            else:
                e = {"type": "rights_request.fulfilled", "data": {
                    "request_id": f"r{requests - 1}", "at": format_rfc3339(t)}}
        else:
            breaches += 1
            if breaches % 2:
                e = {"type": "breach.aware", "data": {"breach_id": f"b{breaches}",
                                                      "aware_at": format_rfc3339(t)}}
            else:
                e = {"type": "breach.notified_authority", "data": {
                    "breach_id": f"b{breaches - 1}", "authority": "Datatilsynet",
                    "notified_at": format_rfc3339(t + timedelta(hours=5)),
                    "phase": "initial"}}
        e["occurred_at"] = format_rfc3339(t)
        out.append(e)
    return out


def build_log(path: Path, n: int, subjects: int) -> SQLiteLog:
    """The SQLite log at ``path`` holding ``n`` events (built once, then reused)."""
    clock = FixedClock(datetime(2030, 1, 1, tzinfo=UTC))
    signer = CheckpointSigner(generate_key(), "auditledger")
    log = SQLiteLog(path, signer, clock)
    if log.last_seq() >= n:
        return log
    t0 = time.perf_counter()
    batch: list[Prepared] = []
    todo = n - log.last_seq()
    # A million events take a minute or two: a bar on stderr (stdout stays JSON lines).
    with Progress(console=Console(stderr=True), transient=True,
                  disable=not sys.stderr.isatty()) as progress:
        task = progress.add_task("building the log", total=todo)
        for env in _envelopes(todo, subjects):
            env.update(spec="auditledger/1", event_id=str(uuid.uuid4()), controller=CID,
                       producer="admin" if env["type"] == "controller.registered" else "app",
                       sig=SIG)
            body = orjson.dumps(env, option=orjson.OPT_SORT_KEYS)
            batch.append(Prepared(env["event_id"], CID, env["type"], env["producer"],
                                  env["occurred_at"], body, b"\0" * 32))
            if len(batch) == 20_000:
                log.append(batch, "2030-01-01T00:00:00.000Z")
                progress.advance(task, len(batch))
                batch = []
        if batch:
            log.append(batch, "2030-01-01T00:00:00.000Z")
    print(f"built log: {log.last_seq()} events in {time.perf_counter() - t0:.1f}s",
          file=sys.stderr)
    return log


def measure(log: SQLiteLog, store: ReadModelStore, label: str, subjects: int,
            batch_size: int, samples: int = 2000) -> dict[str, Any]:
    store.reset()
    runner = ProjectionRunner(LogSource(log), store, batch_size)
    t0 = time.perf_counter()
    n = runner.run_once()
    secs = time.perf_counter() - t0
    rnd = random.Random(2)
    lat = []
    for _ in range(samples):
        subj = _subject(rnd.randrange(subjects))
        q0 = time.perf_counter()
        queries.consents(store, CID, subj, as_of="2026-01-01T00:00:00Z")
        lat.append((time.perf_counter() - q0) * 1000)
    fig = {
        "backend": label,
        "events": n,
        "replay_seconds": round(secs, 2),
        "events_per_second": round(n / secs),
        "consent_p50_ms": round(percentile(lat, 50), 3),
        "consent_p99_ms": round(percentile(lat, 99), 3),
        "batch_size": batch_size,
        "machine_seconds": machine_seconds(),  # after the replay: the phase it ran in
    }
    print(orjson.dumps(fig).decode())
    return fig


def _private_pg(workdir: Path) -> tuple[str, Path]:
    pg_dir = Path(tempfile.mkdtemp(prefix="auditledger-pgbench-"))
    out = subprocess.run([str(REPO / "infra/postgres/pg"), "start", "--dir", str(pg_dir)],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1], pg_dir


def run(events: int = 1_000_000, backend: str = "both", pg_dsn: str | None = None,
        workdir: Path | None = None, batch_size: int = 50_000,
        subjects: int | None = None) -> list[dict[str, Any]]:
    """Build (or reuse) the log, replay it into each backend, print and return figures."""
    workdir = workdir or Path(tempfile.gettempdir()) / "auditledger-bench-projections"
    workdir.mkdir(parents=True, exist_ok=True)
    subjects = subjects or max(100, events // 10)
    log = build_log(workdir / f"log-{events}.sqlite", events, subjects)
    figures = []
    if backend in ("sqlite", "both"):
        db = workdir / "readmodels.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(str(db) + suffix).unlink(missing_ok=True)
        store = SQLiteStore(db)
        figures.append(measure(log, store, "sqlite", subjects, batch_size))
        store.close()
    if backend in ("postgres", "both"):
        started = None
        if pg_dsn is None:
            pg_dsn, started = _private_pg(workdir)
        try:
            pg = PostgresStore(pg_dsn, schema="bench_projections")
            figures.append(measure(log, pg, "postgres", subjects, batch_size))
            pg.drop()
            pg.close()
        finally:
            if started is not None:
                subprocess.run([str(REPO / "infra/postgres/pg"), "stop", "--dir", str(started)],
                               capture_output=True)
                shutil.rmtree(started, ignore_errors=True)
    log.close()
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--pg-dsn")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--batch-size", type=int, default=50_000)
    a = ap.parse_args()
    run(a.events, a.backend, a.pg_dsn, a.workdir, a.batch_size)


if __name__ == "__main__":
    main()
