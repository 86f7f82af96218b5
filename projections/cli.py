"""Read-side CLI groups, attached to ``auditledger`` through entry points (see pyproject).

Every command takes ``--json``; bad input exits 2 with one line on stderr. In the
``deadline`` and ``transfer`` groups that includes click's own usage errors (a missing
option, a non-integer, an unknown option): one line ``error: …``, not a usage box
(``OneLineUsageErrors``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import orjson
import typer
from typer.core import TyperGroup

from ledger.clock import format_rfc3339, parse_rfc3339


class OneLineUsageErrors(TyperGroup):
    """A command group whose subcommands report usage errors as DESIGN.md asks: one line
    ``error: …`` on stderr, exit code 2, nothing on stdout. Parsing a subcommand's
    arguments happens inside the group's ``invoke``, so catching the parser's errors there
    covers a missing option, a bad type and an unknown option alike. (Typer vendors its
    click: ``typer.TyperException`` is the public base of its ``UsageError``.)"""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except typer.TyperException as exc:
            fmt = getattr(exc, "format_message", None)
            message = " ".join((fmt() if fmt else str(exc)).split())
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(code=getattr(exc, "exit_code", 2)) from None


deadline_app = typer.Typer(help="Compute legal deadlines.", no_args_is_help=True,
                           cls=OneLineUsageErrors)
transfer_app = typer.Typer(help="Judge third-country transfers.", no_args_is_help=True,
                           cls=OneLineUsageErrors)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _guard(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except ValueError as exc:  # every legal-rule input error is a ValueError subclass
        _fail(str(exc).splitlines()[0])


#: The only date form the CLI takes (DESIGN.md): ``date.fromisoformat`` alone would also
#: accept ``20260131`` and ISO week dates such as ``2026-W05-6``.
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date(value: str, option: str) -> date:
    if _DATE.fullmatch(value.strip()) is None:
        _fail(f"{option}: not a date YYYY-MM-DD: {value!r}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        _fail(f"{option}: not a date YYYY-MM-DD: {value!r}")


def _instant(value: str, option: str) -> datetime:
    try:
        return parse_rfc3339(value.strip())
    except ValueError as exc:
        _fail(f"{option}: not an RFC 3339 timestamp with offset: {value!r} ({exc})")


def _emit(payload: dict[str, Any], as_json: bool, line: str) -> None:
    typer.echo(orjson.dumps(payload).decode() if as_json else line)


@deadline_app.command("rights")
def deadline_rights(
    received: Annotated[
        str, typer.Option(help="Receipt date YYYY-MM-DD (or an RFC 3339 instant, see --tz).")
    ],
    country: Annotated[str, typer.Option(help="Controller's country, ISO 3166-1 alpha-2.")],
    tz: Annotated[
        str, typer.Option(help="Controller's time zone, for an RFC 3339 --received.")
    ] = "UTC",
    promise_days: Annotated[
        int | None, typer.Option(help="Controller's promise: answer within N calendar days.")
    ] = None,
    extended: Annotated[
        bool, typer.Option("--extended", help="Extension told in time: binding uses +3 months.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Art. 12(3) deadlines: {"due", "extended_due", "promised_due", "binding_due"}."""
    from projections.legal.rights import receipt_date, rights_deadlines, zone

    _guard(lambda: zone(tz))
    if promise_days is not None and promise_days < 1:
        _fail(f"--promise-days: at least 1, not {promise_days}")
    if len(received.strip()) > 10:  # an instant: its local date in the controller's zone
        start = receipt_date(_instant(received, "--received"), tz)
    else:
        start = _date(received, "--received")
    d = _guard(lambda: rights_deadlines(start, country, promise_days, extended))
    payload = {
        "due": d.due.isoformat(),
        "extended_due": d.extended_due.isoformat(),
        "promised_due": d.promised_due.isoformat() if d.promised_due else None,
        "binding_due": d.binding_due.isoformat(),
    }
    _emit(payload, as_json, " ".join(f"{k}={v or '-'}" for k, v in payload.items()))


@deadline_app.command("breach")
def deadline_breach(
    aware: Annotated[str, typer.Option(help="When the controller became aware (RFC 3339).")],
    tz: Annotated[str, typer.Option(help="Time zone for the local rendering.")] = "UTC",
    as_json: JsonOpt = False,
) -> None:
    """Art. 33 authority deadline: aware + 72 elapsed hours."""
    from projections.legal.breach import authority_due, format_local
    from projections.legal.rights import zone

    _guard(lambda: zone(tz))
    aware_at = _instant(aware, "--aware")
    due = authority_due(aware_at)
    payload = {"authority_due": format_rfc3339(due), "authority_due_local": format_local(due, tz)}
    _emit(
        payload,
        as_json,
        f"authority_due={payload['authority_due']} ({payload['authority_due_local']} {tz})",
    )


@transfer_app.command("check")
def transfer_check(
    country: Annotated[str, typer.Option(help="Destination, ISO 3166-1 alpha-2 (or EPO).")],
    mechanism: Annotated[str, typer.Option(help="Transfer mechanism id, e.g. scc_2021.")],
    on: Annotated[str, typer.Option(help="Day of the transfer, YYYY-MM-DD.")],
    exporter: Annotated[str | None, typer.Option(
        help="Exporter's country (the controller's), ISO 3166-1 alpha-2: NO, IS or LI "
             "warn while an adequacy decision is not part of the EEA Agreement.")] = None,
    contract_date: Annotated[str | None, typer.Option(
        help="Day the transfer contract was concluded, YYYY-MM-DD (decides the pre-2021 "
             "SCCs after 2021-09-27).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Judge a transfer by the law on that day: {"valid", "reason", "warnings"}."""
    from projections.legal.transfers import judge_transfer

    day = _date(on, "--on")
    contract = _date(contract_date, "--contract-date") if contract_date is not None else None
    v = _guard(lambda: judge_transfer(country, mechanism, day, exporter, contract))
    # occasional-only is in the reason
    payload = {"valid": v.valid, "reason": v.reason, "warnings": list(v.warnings)}
    line = f"{'valid' if v.valid else 'INVALID'}: {v.reason}"
    _emit(payload, as_json, "".join([line, *(f"\nwarning: {w}" for w in v.warnings)]))


# -- projections and reports -------------------------------------------------------------

projections_app = typer.Typer(help="Build and follow the read models.", no_args_is_help=True)

DataOpt = Annotated[Path, typer.Option("--data", help="Ledger data directory.")]
StoreOpt = Annotated[
    str | None,
    typer.Option("--store", help="Read-model store: a PostgreSQL DSN, or a SQLite file "
                 "(default DIR/readmodels.sqlite; env AUDITLEDGER_READMODEL_DSN)."),
]
SourceOpt = Annotated[
    str,
    typer.Option("--source", help="log: the log of record (SQLite, or a Kafka ledger's"
                 " index), one position; kafka: the events topic read directly, one"
                 " position per topic-partition (Kafka ledgers)."),
]


def _store_target(data: Path, store: str | None) -> str:
    import os

    from ledger.config import Config

    target = store or os.environ.get("AUDITLEDGER_READMODEL_DSN")
    if target:
        return target
    return str(Config(data_dir=data).readmodel_db)


def _open_source(data: Path, kind: str = "log"):  # type: ignore[no-untyped-def]
    from ledger.config import ConfigError
    from projections.runner import open_source

    try:
        return open_source(data, kind)
    except (ConfigError, OSError, LookupError) as exc:
        _fail(str(exc))


def _close(source: Any, log: Any) -> None:
    source.close()
    log.close()


@projections_app.command("rebuild")
def projections_rebuild(
    data: DataOpt,
    store: StoreOpt = None,
    batch_size: Annotated[int, typer.Option(help="Events per tracking transaction.")] = 50_000,
    source_kind: SourceOpt = "log",
    as_json: JsonOpt = False,
) -> None:
    """Replay the whole log into fresh read models. A SQLite store is built beside the live
    file and renamed over it, so readers never see a half-built model."""
    import os
    import time

    from projections.runner import rebuild
    from projections.store import open_store

    source, log = _open_source(data, source_kind)
    target = _store_target(data, store)
    is_file = not (target.startswith(("postgresql://", "postgres://")) or "dbname=" in target)
    build_at = target + ".rebuild" if is_file else target
    if is_file:
        for suffix in ("", "-wal", "-shm"):
            Path(build_at + suffix).unlink(missing_ok=True)
    t0 = time.perf_counter()
    rm = open_store(build_at)
    try:
        n = rebuild(source, rm, batch_size)
    finally:
        rm.close()
        _close(source, log)
    if is_file:
        for suffix in ("-wal", "-shm"):
            Path(target + suffix).unlink(missing_ok=True)
        os.replace(build_at, target)
    secs = time.perf_counter() - t0
    payload = {"events": n, "seconds": round(secs, 3), "store": target}
    _emit(payload, as_json, f"rebuilt {n} events in {secs:.2f}s into {target}")


@projections_app.command("run")
def projections_run(
    data: DataOpt,
    store: StoreOpt = None,
    batch_size: Annotated[int, typer.Option(help="Events per tracking transaction.")] = 50_000,
    follow: Annotated[bool, typer.Option("--follow", help="Keep following the log.")] = False,
    source_kind: SourceOpt = "log",
    alerts: Annotated[bool, typer.Option(
        "--alerts", help="With --follow: also run the alert scheduler and deliverer"
        " (serve's worker does; docs/alerts.md).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Apply the events not yet projected (exactly once), then exit, or follow. Only one
    worker runs per read-model store: a second one exits 1 at once, naming the lock
    (projections/worker_lock.py) — so with ``--alerts`` one scheduler plans per store."""
    from projections.runner import ProjectionRunner
    from projections.store import open_store
    from projections.worker_lock import WorkerLock, WorkerLocked, lock_path

    target = _store_target(data, store)
    lock = WorkerLock(lock_path(data, target))
    try:
        lock.acquire()
    except (WorkerLocked, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    try:
        source, log = _open_source(data, source_kind)
        rm = open_store(target)
        runner = ProjectionRunner(source, rm, batch_size)
        service = _start_alerts(data, rm, runner) if follow and alerts else None
        if service is not None:
            import signal

            # serve stops its worker with SIGTERM: finish the batch in hand, then stop
            # the scheduler and let deliveries in flight complete (not re-sent later).
            signal.signal(signal.SIGTERM, lambda *_: runner.stop())
        try:
            if follow:
                runner.run_forever()
            n = 0 if service is not None else runner.run_once()
            payload = {"events": n, "position": runner.position(),
                       "positions": _positions(runner)}
        finally:
            if service is not None:
                service.close()
            rm.close()
            _close(source, log)
    finally:
        lock.release()
    _emit(payload, as_json, f"applied {n} events, position {payload['position']}")


def _start_alerts(data: Path, rm: Any, runner: Any) -> Any:
    """The alert service of data directory ``data`` over read-model store ``rm`` (its own
    connections to it), started: what ``serve``'s worker runs beside the projections.
    With the log as the source (one partition, position = the events' ``seq``), its
    scans read only the stored findings applied since the last (``position``)."""
    from ledger.clock import SystemClock
    from ledger.config import Config
    from projections.alerts.outbox import Outbox
    from projections.alerts.scheduler import AlertService, kafka_sink, outbox_path
    from projections.store import open_spec

    one = runner.source.source == "log" and tuple(runner.source.partitions()) == (0,)
    return AlertService(open_spec(rm.writer_spec()), Outbox(outbox_path(data)),
                        SystemClock(), kafka=kafka_sink(Config.load(data)), own=True,
                        position=runner.position if one else None).start()


@projections_app.command("status")
def projections_status(
    data: DataOpt, store: StoreOpt = None, source_kind: SourceOpt = "log",
    as_json: JsonOpt = False,
) -> None:
    """How far the read models are behind the log (``position``/``log``/``lag`` of the
    log index; ``positions`` per tracked topic-partition with ``--source kafka``)."""
    from projections.runner import ProjectionRunner
    from projections.store import open_store

    source, log = _open_source(data, source_kind)
    rm = open_store(_store_target(data, store))
    try:
        runner = ProjectionRunner(source, rm)
        pos = runner.position()
        payload: dict[str, Any] = {"position": pos, "log": log.last_seq(),
                                   "lag": sum(source.lag(p, runner.position(p))
                                              for p in source.partitions()),
                                   "positions": _positions(runner)}
    finally:
        rm.close()
        _close(source, log)
    _emit(payload, as_json, " ".join(f"{k}={v}" for k, v in payload.items()))


def _positions(runner: Any) -> dict[str, int]:
    """``{"<source>/<partition>": next position}`` of every partition of the source."""
    return {f"{runner.source.source}/{p}": runner.position(p)
            for p in runner.source.partitions()}


def _period_bound(value: str | None, option: str) -> datetime | None:
    """``--from`` / ``--to``: a date (its start, 00:00 UTC, as the API reads it) or an RFC
    3339 instant."""
    if value is None:
        return None
    v = value.strip()
    if _DATE.fullmatch(v):
        return datetime.combine(_date(v, option), datetime.min.time(), UTC)
    return _instant(v, option).astimezone(UTC)


def report(
    data: DataOpt,
    controller: Annotated[str, typer.Option(help="Controller id.")],
    from_: Annotated[str | None, typer.Option(
        "--from", help="Start of the period (inclusive): YYYY-MM-DD (00:00 UTC) or RFC 3339."
    )] = None,
    to: Annotated[str | None, typer.Option(
        "--to", help="End of the period (exclusive): YYYY-MM-DD (00:00 UTC) or RFC 3339.")
    ] = None,
    format: Annotated[str, typer.Option("--format",
                                        help="json | html | csv | xlsx | pdf")] = "json",
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write the report to FILE (needed for xlsx and pdf on a terminal).")
    ] = None,
    store: StoreOpt = None,
    catch_up: Annotated[
        bool, typer.Option(help="Project events not yet applied before reporting.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Accountability report (Art. 5(2)) of one controller for a period, from the read
    models, anchored to the log's latest signed checkpoint (docs/report.md)."""
    import sys

    from ledger.config import Config
    from ledger.keystore import open_keystore
    from ledger.personal import with_personal_data
    from ledger.sequencer import CheckpointSigner
    from ledger.signing import load_private_key
    from projections import queries
    from projections.accountability import checkpoint_doc
    from projections.report import FORMATS, render
    from projections.runner import ProjectionRunner
    from projections.store import open_store

    if as_json:
        format = "json"
    if format not in FORMATS:
        _fail(f"--format: one of {', '.join(FORMATS)}, not {format!r}")
    start, end = _period_bound(from_, "--from"), _period_bound(to, "--to")
    if start and end and start > end:
        _fail("--from is after --to")
    if out is None and format in ("xlsx", "pdf") and sys.stdout.isatty():
        _fail(f"{format} is a binary file: give --out FILE")
    rm = open_store(_store_target(data, store))
    try:
        source, log = _open_source(data)
        try:
            if catch_up:
                ProjectionRunner(source, rm).run_once()
            if log.size(controller) and (log.latest_checkpoint(controller) is None or
                                         log.latest_checkpoint(controller).size
                                         < log.size(controller)):
                log.checkpoint_due()  # sign the tree head the report is made from
            cfg = Config.load(data)
            key = CheckpointSigner(load_private_key(cfg.log_key_file),
                                   cfg.log_key_name).verifier_key
            cp = checkpoint_doc(log.latest_checkpoint(controller), key)
            try:
                doc = queries.report(rm, controller, start=start, end=end, checkpoint=cp)
            except queries.UnknownControllerError:
                _fail(f"unknown controller: {controller}")
            # what the sealed personal data of each case are now: kept or erased (never
            # the plaintext; ledger/personal.py)
            keys = open_keystore(cfg)
            try:
                with_personal_data(doc, log, keys)
            finally:
                keys.close()
        finally:
            log.close()
    finally:
        rm.close()
    body = render(doc, format)
    if out is not None:
        try:
            out.write_bytes(body)
        except OSError as exc:
            _fail(f"--out: {exc}")
        typer.echo(f"wrote {out} ({len(body)} bytes, {format})", err=True)
    else:
        sys.stdout.buffer.write(body if body.endswith(b"\n") or format in ("xlsx", "pdf")
                                else body + b"\n")
        sys.stdout.buffer.flush()


def bench_projections(
    events: Annotated[int, typer.Option(help="Events in the log replayed.")] = 1_000_000,
    backend: Annotated[str, typer.Option(help="sqlite | postgres | both")] = "both",
    pg_dsn: Annotated[str | None, typer.Option(
        "--pg-dsn", help="PostgreSQL DSN (default: a private cluster for the run).")] = None,
    workdir: Annotated[Path | None, typer.Option(
        help="Where the log is built once and reused.")] = None,
    batch_size: Annotated[int, typer.Option(help="Events per tracking transaction.")] = 50_000,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Accepted for uniformity: the figures are JSON lines anyway.")] = False,
) -> None:
    """Projection benchmark: replay events/s into empty read models and a subject's
    consent-state latency, one JSON line per store (docs/benchmarks.md, "Projections")."""
    from bench.projections import run

    if backend not in ("sqlite", "postgres", "both"):
        _fail(f"--backend: sqlite, postgres or both, not {backend!r}")
    run(events, backend, pg_dsn, workdir, batch_size)
