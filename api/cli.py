"""``auditledger serve``: the API, the checkpoint timer and the projection runner, in one
process. Registered through the ``auditledger.commands`` entry point (``ledger`` never
imports ``api``); ``auditledger demo`` calls it as ``serve(data=..., port=...)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

DEFAULT_DATA = Path("auditledger-data")


def serve(
    data: Annotated[Path, typer.Option(
        "--data", help="Ledger data directory (created with a SQLite log if missing).")
    ] = DEFAULT_DATA,
    kafka: Annotated[str | None, typer.Option(
        help="Kafka bootstrap (a Kafka ledger, or a new one created on Kafka).")] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
    projections: Annotated[bool, typer.Option(
        help="Run the projections (read models, alerts) beside the API.")] = True,
    json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    sequence: Annotated[bool, typer.Option(
        help="Per-partition Kafka ledger: join the sequencer group (--no-sequence: an API "
             "replica that routes every write to the intake topic).")] = True,
    advertise: Annotated[str | None, typer.Option(
        help="Per-partition Kafka ledger: this process's URL as other members' /readyz "
             "shows it (default http://HOST:PORT).")] = None,
) -> None:
    """Serve the HTTP API, sign checkpoints every second and run the projections (and, on
    Kafka, sequence what producers write to the intake topic)."""
    import uvicorn

    from api.app import create_app
    from ledger.config import ConfigError
    from ledger.kek import KekError
    from ledger.keystore import KeyStoreError
    from ledger.service import Ledger, init_data_dir

    try:
        if not (data / "config.json").exists():
            cfg, token = init_data_dir(data, kafka)
            typer.echo(orjson.dumps({
                "created": str(data), "admin_api_key": token,
                "log_public_key": (cfg.keys_dir / "log.pub").read_text().strip(),
            }).decode())
        # Every signature goes to the verifier worker (none checked here): this process
        # also serves HTTP and holds one GIL for it and ingest, so it is the critical path
        # (docs/benchmarks.md, "Main job": ~22 µs per event moved off it).
        ledger = Ledger.open(data, kafka, verifier_main_share=0.0)
    except (ConfigError, OSError, ValueError, KekError, KeyStoreError) as exc:
        # kek_mismatch and the like: the ledger refuses to start, in one line (the
        # message itself: ``!r`` inside the f-string quoted every one of them)
        reason = str(exc).splitlines()[0] if str(exc) else repr(exc)
        typer.echo(f"error: {reason}", err=True)
        raise typer.Exit(2) from None
    from api.readside import open_read_side
    from api.supervisor import WorkerSupervisor, worker_command

    # The projection runner is Python-heavy: in its own process it does not hold this
    # one's GIL while requests are served (ingest throughput, read latency). It is
    # supervised: restarted when it dies, killed when serve dies (docs/deployment.md).
    read_side = open_read_side(ledger, ledger.clock, follow=True) if projections else None
    if kafka:
        # The worker reads its config from DIR: the bootstrap given here reaches it (its
        # log index, the alerts topic it publishes to) through the environment.
        import os

        os.environ["AUDITLEDGER_KAFKA"] = kafka
    worker = WorkerSupervisor(worker_command(data)).start() if read_side else None
    intake: Any = None

    def close() -> None:
        if intake is not None:
            intake.stop()
        if worker is not None:
            worker.stop()
        if read_side is not None:
            read_side.close()
        ledger.close()

    # uvicorn re-raises SIGTERM/SIGINT after its shutdown, so code after uvicorn.run() may
    # never run: closing happens in the app's lifespan (on_shutdown).
    # A signature worker that dies breaks its pool: the timer rebuilds it within a second
    # (the next batch would, too, with a retry), and /readyz shows it meanwhile.
    # The alert scheduler and deliverer run in that worker too (``--alerts``): planning
    # reads the read models and would otherwise take this process's GIL from ingest
    # (docs/benchmarks.md, "Main job"); the routes and the SSE stream read the outbox.
    app = create_app(ledger, read_side=read_side, background=True, run_projections=False,
                     run_alerts=False, on_shutdown=close,
                     tasks=[(ledger.verifier.repair, 1.0)])
    app.state.projections_worker = worker  # /readyz: a dead worker is not ready
    url = f"http://{host}:{port}"
    if ledger.cfg.backend == "kafka":
        # Producers that write straight to auditledger.intake.v1 are checked and sequenced
        # here, under the same lock as HTTP ingest (one writer per ledger). Per partition,
        # the worker is this process's membership of the sequencer group, and writes for
        # the other partitions are routed to their sequencer (docs/deployment.md).
        from ledger.intake import IntakeWorker

        if ledger.cfg.per_partition:
            from ledger.routing import IntakeRouter

            group = f"{ledger.cfg.kafka_topic_prefix}.intake"
            ledger.router = IntakeRouter(ledger.log, group,  # type: ignore[arg-type]
                                         lock=app.state.ingest_lock)
            if not sequence:
                ledger.log.on_demand = False  # type: ignore[attr-defined]
        if sequence or not ledger.cfg.per_partition:
            intake = IntakeWorker(ledger, lock=app.state.ingest_lock,
                                  member=advertise or url).start()
        app.state.sequencing = intake
    info = {"url": url, "data": str(data), "log_public_key": ledger.verifier_key,
            "backend": ledger.cfg.backend, "projections": read_side is not None}
    typer.echo(orjson.dumps(info).decode() if json else
               f"auditledger API on {url} (data {data}, {ledger.cfg.backend} log)")
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


bench_app = typer.Typer(help="HTTP API and evidence-bundle benchmarks (docs/benchmarks.md).",
                        no_args_is_help=True)


def _bench_out(result: dict, as_json: bool) -> None:
    typer.echo(orjson.dumps(result).decode() if as_json else result["text"])


@bench_app.command("ingest")
def bench_http_ingest(
    events: Annotated[int, typer.Option(help="Events to POST.")] = 50_000,
    batch: Annotated[int, typer.Option(help="Events per request.")] = 100,
    concurrency: Annotated[int, typer.Option(help="Client threads.")] = 8,
    projections: Annotated[bool, typer.Option(help="Serve with the read side.")] = False,
    json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """POST /v1/events against `serve` in another process (target ≥ 5,000 events/s)."""
    from bench.http_ingest import run

    _bench_out(run(events, batch, concurrency, projections), json)


@bench_app.command("reads")
def bench_http_reads(
    events: Annotated[int, typer.Option(help="Events stored.")] = 1_000_000,
    data: Annotated[Path | None, typer.Option(help="Keep/reuse the ledger here.")] = None,
    seconds: Annotated[float, typer.Option(help="Load duration.")] = 20,
    concurrency: Annotated[int, typer.Option(help="Client threads.")] = 4,
    projections: Annotated[bool, typer.Option(help="Also read the read models.")] = False,
    json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Auditor read latency under load (target p99 < 20 ms with 1,000,000 events)."""
    from bench.http_reads import run

    _bench_out(run(events, data, seconds, concurrency, projections), json)


@bench_app.command("bundle")
def bench_bundle(
    events: Annotated[int, typer.Option(help="Events in the bundle.")] = 10_000,
    log_events: Annotated[int | None, typer.Option(help="Events in the log.")] = None,
    json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Build and verify an evidence bundle (target: 10,000 events in under 2 s)."""
    from bench.bundle import run

    _bench_out(run(events, log_events), json)


@bench_app.command("producer")
def bench_producer(
    events: Annotated[int, typer.Option(help="Events per emit-rate run.")] = 5_000,
    drain: Annotated[int, typer.Option(help="Events queued during the outage.")] = 100_000,
    json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Producer client: emit rate with the outbox on and off, and the time to drain a
    queue built during a ledger outage (docs/producer-client.md)."""
    from bench.producer import run

    _bench_out(run(events, drain), json)
