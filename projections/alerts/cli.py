"""``auditledger alerts list|upcoming|dead --data DIR [--json]``.

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
        help="pending | emitted | cancelled | dead | undelivered")] = None,
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
                    for p in plan_controller(store, c, SystemClock()):
                        if p.id in known:
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
