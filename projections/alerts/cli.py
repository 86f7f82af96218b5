"""``auditledger alerts list|upcoming|dead --data DIR [--json]`` and ``auditledger alerts
webhook add|list|remove --data DIR --controller C`` (receivers of every kind).

Reads the outbox (``DIR/alerts.sqlite``) that ``auditledger serve`` fills; ``upcoming``
also plans from the read models in DIR, so it answers before the server ever ran (then
run ``auditledger projections run`` first for current read models). Safe while the server
runs: SQLite WAL readers never block it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import orjson
import typer

alerts_app = typer.Typer(help="Deadline and finding alerts: sent, upcoming, dead-lettered.",
                         no_args_is_help=True)

DataOpt = Annotated[Path, typer.Option("--data", help="Ledger data directory.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
ControllerOpt = Annotated[str | None, typer.Option(help="Only this controller.")]
LimitOpt = Annotated[int, typer.Option(min=1, help="At most this many.")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _outbox(data: Path) -> Any:
    from projections.alerts.outbox import Outbox
    from projections.alerts.scheduler import outbox_path

    if not (data / "config.json").exists():
        _fail(f"{data} is not an auditledger data directory (run init)")
    return Outbox(outbox_path(data))


def _line(a: dict[str, Any]) -> str:
    seq = f"#{a['seq']}" if a.get("seq") else "-"
    deliveries = ",".join(f"{d['sink']}={d['state']}" for d in a.get("deliveries", []))
    return (f"{seq:>6} {a['due_at']} {a['state']:<9} {a['controller']} {a['kind']}:"
            f"{a['case']} {a['threshold']}" + (f" [{deliveries}]" if deliveries else ""))


def _emit(items: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        typer.echo(orjson.dumps({"items": items}).decode())
        return
    for a in items:
        typer.echo(_line(a))
    if not items:
        typer.echo("(none)")


def _scope(controller: str | None) -> list[str] | None:
    return None if controller is None else [controller]


@alerts_app.command("list")
def list_alerts(
    data: DataOpt,
    state: Annotated[str | None, typer.Option(
        help="pending | emitted | cancelled | superseded | dead | undelivered")] = None,
    controller: ControllerOpt = None, limit: LimitOpt = 1000, as_json: JsonOpt = False,
) -> None:
    """Alerts in the outbox (emitted ones in send order, with their deliveries)."""
    ob = _outbox(data)
    try:
        items = ob.alerts(state, _scope(controller), limit=limit)
    except ValueError as exc:
        _fail(str(exc))
    finally:
        ob.close()
    _emit(items, as_json)


@alerts_app.command("upcoming")
def upcoming(data: DataOpt, controller: ControllerOpt = None, limit: LimitOpt = 1000,
             as_json: JsonOpt = False) -> None:
    """Alerts not yet sent, soonest first: planned from the read models now, merged with
    the outbox's pending ones."""
    from ledger.clock import SystemClock, format_rfc3339
    from projections.alerts.scheduler import plan_controller
    from projections.alerts.thresholds import where_it_stands
    from projections.store import SQLiteStore

    ob = _outbox(data)
    try:
        known = {a["id"]: a for a in ob.alerts(None, _scope(controller), limit=1_000_000)}
        items = {i: a for i, a in known.items() if a["state"] == "pending"}
        rm = data / "readmodels.sqlite"
        if rm.exists():
            store = SQLiteStore(rm)
            try:
                for c in store.controllers():
                    if controller is not None and c != controller:
                        continue
                    clock = SystemClock()
                    plans = plan_controller(store, c, clock)
                    # what the scheduler will supersede when it first sees these cases
                    skip = where_it_stands(plans, clock.now(), ob.seen_series(
                        p.series for p in plans if p.series is not None))
                    for p in plans:
                        if p.id in known or p.id in skip:
                            continue
                        items[p.id] = {"id": p.id, "seq": None, "controller": c,
                                       "kind": p.kind, "case": p.case_id,
                                       "threshold": p.threshold,
                                       "due_at": format_rfc3339(p.due_at), "emitted_at": None,
                                       "state": "planned", **p.payload}
            finally:
                store.close()
    finally:
        ob.close()
    out = sorted(items.values(), key=lambda a: (a["due_at"], a["id"]))[:limit]
    _emit(out, as_json)


@alerts_app.command("dead")
def dead(data: DataOpt, controller: ControllerOpt = None, limit: LimitOpt = 1000,
         as_json: JsonOpt = False) -> None:
    """Alerts with a dead-lettered delivery (retries exhausted). Re-queue one with
    ``POST /v1/alerts/{id}/redeliver``."""
    ob = _outbox(data)
    try:
        items = ob.alerts("dead", _scope(controller), limit=limit)
    finally:
        ob.close()
    _emit(items, as_json)


# -- receivers: auditledger alerts webhook add|list|remove --------------------------------

webhook_app = typer.Typer(
    help="Where a controller's alerts go: signed webhooks, e-mail (SMTP), Slack, Teams.",
    no_args_is_help=True)
alerts_app.add_typer(webhook_app, name="webhook")

ControllerReq = Annotated[str, typer.Option(help="The controller whose alerts these are.")]
KindOpt = Annotated[str, typer.Option(help="webhook | email | slack | teams")]


def _receivers(data: Path, controller: str) -> Any:
    """The outbox, once the controller is known to the ledger (like the HTTP routes:
    registered, or with events in its log)."""
    from ledger.config import ConfigError
    from ledger.service import Ledger

    ob = _outbox(data)
    try:
        ledger = Ledger.open(data)
    except (ConfigError, OSError) as exc:
        ob.close()
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    try:
        known = (controller in ledger.registry.controllers
                 or ledger.log.size(controller) > 0)
    finally:
        ledger.close()
    if not known:
        ob.close()
        _fail(f"unknown controller: {controller}")
    return ob


def _target(r: dict[str, Any]) -> str:
    if r["kind"] == "webhook":
        return r["url"]
    if r["kind"] == "email":
        return (f"{r['host']}:{r['port']} ({r['security']}) {r['from']} -> "
                f"{', '.join(r['to'])}")
    return f"{r['host']} (URL kept secret)"


@webhook_app.command("add")
def webhook_add(
    data: DataOpt, controller: ControllerReq, kind: KindOpt = "webhook",
    url: Annotated[str | None, typer.Option(help=(
        "webhook: where alerts are POSTed; slack/teams: the incoming-webhook URL (a "
        "secret: stored, never listed)."))] = None,
    url_file: Annotated[Path | None, typer.Option(help=(
        "slack/teams: a file holding the URL, to keep it out of the shell history."))
                        ] = None,
    smtp_host: Annotated[str | None, typer.Option(help="email: the SMTP server.")] = None,
    smtp_port: Annotated[int | None, typer.Option(
        help="email: default 587 (starttls), 465 (ssl), 25 (none).")] = None,
    smtp_security: Annotated[str, typer.Option(help="email: starttls | ssl | none")
                             ] = "starttls",
    smtp_user: Annotated[str | None, typer.Option(help="email: login name.")] = None,
    smtp_password_file: Annotated[Path | None, typer.Option(help=(
        "email: a file holding the password (or set AUDITLEDGER_SMTP_PASSWORD); never "
        "on the command line."))] = None,
    sender: Annotated[str | None, typer.Option("--from", help="email: From address.")
                      ] = None,
    to: Annotated[list[str] | None, typer.Option(
        "--to", help="email: a recipient (repeat for several).")] = None,
    base_url: Annotated[str | None, typer.Option(help=(
        "email/slack/teams: where the auditor pages are served, to link the case."))
                        ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a receiver. A webhook's signing secret is printed once; e-mail
    passwords and chat URLs are kept in DIR/alerts.sqlite and never printed."""
    import os

    from projections.alerts.sinks.config import sink_spec

    if url_file is not None:
        if url is not None:
            _fail("--url-file: give --url or --url-file, not both")
        try:
            url = url_file.read_text().strip()
        except OSError as exc:
            _fail(f"--url-file: {exc.strerror or exc}")
    password = os.environ.get("AUDITLEDGER_SMTP_PASSWORD") if smtp_user else None
    if smtp_password_file is not None:
        try:
            password = smtp_password_file.read_text().strip("\r\n")
        except OSError as exc:
            _fail(f"--smtp-password-file: {exc.strerror or exc}")
    if kind != "email" and (smtp_host or smtp_user or sender or to or smtp_port
                            or smtp_password_file):
        _fail("--smtp-*, --from, --to: only with --kind email")
    try:
        spec = sink_spec(kind, url=url, host=smtp_host, port=smtp_port,
                         security=smtp_security, username=smtp_user,
                         password=password,
                         sender=sender, to=to or [], base_url=base_url)
    except ValueError as exc:
        flag = {"from": "--from", "to": "--to", "host": "--smtp-host", "port": "--smtp-port",
                "security": "--smtp-security", "username": "--smtp-user",
                "password": "--smtp-password-file", "url": "--url", "kind": "--kind",
                "base_url": "--base-url"}
        name, _, why = str(exc).partition(": ")
        _fail(f"{flag.get(name, name)}: {why}")
    from ledger.clock import SystemClock

    ob = _receivers(data, controller)
    try:
        made = ob.add_sink(controller, spec, SystemClock().now())
    finally:
        ob.close()
    if as_json:
        typer.echo(orjson.dumps(made).decode())
        return
    typer.echo(f"added {made['kind']} receiver {made['id']} for {controller}: "
               f"{_target(made)}")
    if "secret" in made:
        typer.echo(f"signing secret (shown once): {made['secret']}")


@webhook_app.command("list")
def webhook_list(data: DataOpt, controller: ControllerReq,
                 kind: Annotated[str | None, typer.Option(
                     help="Only this kind: webhook | email | slack | teams")] = None,
                 as_json: JsonOpt = False) -> None:
    """The controller's receivers, without their secrets."""
    from projections.alerts.sinks.config import KINDS

    if kind is not None and kind not in KINDS:
        _fail(f"--kind: one of {', '.join(KINDS)}")
    ob = _receivers(data, controller)
    try:
        items = ob.webhooks(controller, kind)
    finally:
        ob.close()
    if as_json:
        typer.echo(orjson.dumps({"items": items}).decode())
        return
    for r in items:
        typer.echo(f"{r['id']} {r['kind']:<7} {r['created_at']} {_target(r)}")
    if not items:
        typer.echo("(none)")


@webhook_app.command("remove")
def webhook_remove(data: DataOpt, controller: ControllerReq,
                   receiver_id: Annotated[str, typer.Option("--id", help="The receiver id.")],
                   as_json: JsonOpt = False) -> None:
    """Stop sending to a receiver; its queued deliveries are cancelled."""
    from ledger.clock import SystemClock

    ob = _receivers(data, controller)
    try:
        gone = ob.delete_webhook(controller, receiver_id, SystemClock().now())
    finally:
        ob.close()
    if not gone:
        _fail(f"no receiver {receiver_id} for {controller}")
    typer.echo(orjson.dumps({"id": receiver_id, "removed": True}).decode() if as_json
               else f"removed {receiver_id}")
