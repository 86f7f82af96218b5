"""The ``auditledger`` command line.

Write-side commands live here. Read-side command groups (``deadline``, ``transfer``,
``projections``, ``serve``, ...) are contributed through the ``auditledger.commands``
entry-point group, so this module never imports ``projections`` or ``api``.

Every command takes ``--json`` and exits non-zero with a one-line reason on bad input.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer

from ledger.config import ConfigError

app = typer.Typer(
    name="auditledger",
    help="Event-sourced GDPR compliance audit ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
controller_app = typer.Typer(help="Register controllers (tenants).", no_args_is_help=True)
producer_app = typer.Typer(help="Register and revoke producers.", no_args_is_help=True)
apikey_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(controller_app, name="controller")
app.add_typer(producer_app, name="producer")
app.add_typer(apikey_app, name="apikey")
schema_app = typer.Typer(help="The event catalogue: types and their JSON Schemas.",
                         no_args_is_help=True)
app.add_typer(schema_app, name="schema")

DataOpt = Annotated[Path, typer.Option("--data", help="Ledger data directory.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]

F = TypeVar("F", bound=Callable[..., Any])


class CliError(Exception):
    """Bad input: printed as one line, exit status 2."""


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def guarded(fn: F) -> F:
    """Turn expected failures into a one-line reason and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not isinstance(exc, _expected()):
                raise
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            fail(msg)

    return wrapper  # type: ignore[return-value]


def _expected() -> tuple[type[Exception], ...]:
    """Failures that are bad input or set-up, not bugs: among them a wrong or missing KEK
    (``kek_mismatch: …``), imported only once something failed."""
    from ledger.kek import KekError
    from ledger.keystore import KeyStoreError
    from ledger.subjects import SubjectError

    return (CliError, ConfigError, ValueError, FileNotFoundError, KeyError, KekError,
            KeyStoreError, SubjectError)


def out(doc: Any, as_json: bool, human: str | None = None) -> None:
    if as_json or human is None:
        typer.echo(orjson.dumps(doc).decode())
    else:
        typer.echo(human)


def _open(data: Path, kafka: str | None = None, **kw: Any) -> Any:
    from ledger.service import Ledger

    return Ledger.open(data, kafka, **kw)


# -- init / keys ------------------------------------------------------------------------


@app.command()
@guarded
def init(
    data: DataOpt,
    kafka: Annotated[str | None, typer.Option(help="Kafka bootstrap: log on Kafka.")] = None,
    partitions: Annotated[int, typer.Option(
        help="Kafka: partitions of each topic the ledger creates.")] = 1,
    sequencers: Annotated[str, typer.Option(
        help="Kafka: 'one' sequencer for all partitions, or 'per-partition' (docs/deployment.md)."
    )] = "one",
    json: JsonOpt = False,
) -> None:
    """Create a new ledger: log key and admin API key (printed once)."""
    from ledger.service import init_data_dir

    cfg, token = init_data_dir(data, kafka, partitions=partitions, sequencers=sequencers)
    vkey = (cfg.keys_dir / "log.pub").read_text().strip()
    if kafka:
        _open(data).close()  # creates the topics now, so a bad address fails here
    out({"admin_api_key": token, "log_public_key": vkey}, True)


@app.command()
@guarded
def keygen(
    out_file: Annotated[Path, typer.Option("--out", help="Private key file (PEM).")],
    json: JsonOpt = False,
) -> None:
    """Make an Ed25519 key pair for a producer; prints the public key."""
    from ledger.signing import generate_key, public_key_text, save_private_key

    if out_file.exists():
        raise CliError(f"{out_file} exists; not overwriting a key")
    key = generate_key()
    save_private_key(key, out_file)
    pub = public_key_text(key)
    out({"public_key": pub, "file": str(out_file)}, json, pub)


# -- administration -----------------------------------------------------------------------


def _result_line(result: Any, as_json: bool) -> None:
    doc = result.to_dict()
    if result.status == "rejected":
        typer.echo(orjson.dumps(doc).decode() if as_json else
                   f"rejected: {doc.get('code')}: {doc.get('detail')}", err=not as_json)
        raise typer.Exit(1)
    out(doc, as_json, f"{result.status}: {doc['event_id']} at index {doc.get('index')}")


def _admin(data: Path, as_json: bool, action: Callable[[Any], Any]) -> None:
    """Open the ledger, append one administration event, print its receipt."""
    ledger = _open(data)
    try:
        _result_line(action(ledger), as_json)
    finally:
        ledger.close()


@controller_app.command("register")
@guarded
def controller_register(
    data: DataOpt,
    id: Annotated[str, typer.Option("--id", help="Country + organisation number.")],
    name: Annotated[str, typer.Option(help="Legal name.")],
    country: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2.")],
    tz: Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/Oslo.")],
    answer_within_days: Annotated[
        int | None, typer.Option(help="Stricter promise for rights requests (days).")
    ] = None,
    identity_policy: Annotated[str, typer.Option(help="strict | restart_on_identity")] = "strict",
    lead_authority: Annotated[str | None, typer.Option(help="Lead supervisory authority.")] = None,
    json: JsonOpt = False,
) -> None:
    """Register a controller; its admin key is kept in DATA/keys/controllers."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise CliError(f"unknown time zone {tz!r}") from None
    doc: dict[str, Any] = {"name": name, "country": country.upper(), "timezone": tz,
                           "identity_policy": identity_policy}
    if answer_within_days is not None:
        doc["answer_within_days"] = answer_within_days
    if lead_authority:
        doc["lead_authority"] = lead_authority
    _admin(data, json, lambda ledger: ledger.register_controller(id, doc))


@producer_app.command("register")
@guarded
def producer_register(
    data: DataOpt,
    controller: Annotated[str, typer.Option(help="Controller id.")],
    id: Annotated[str, typer.Option("--id", help="Producer id (key id).")],
    public_key: Annotated[str, typer.Option(help="Ed25519 public key, base64url.")],
    types: Annotated[str, typer.Option(help="Allowed type patterns, comma-separated.")],
    json: JsonOpt = False,
) -> None:
    """Register a producer key for a controller, signed with the controller's admin key."""
    patterns = [t.strip() for t in types.split(",") if t.strip()]
    _admin(data, json, lambda ledger: ledger.register_producer(controller, id, public_key,
                                                               patterns))


@producer_app.command("revoke")
@guarded
def producer_revoke(
    data: DataOpt,
    controller: Annotated[str, typer.Option(help="Controller id.")],
    id: Annotated[str, typer.Option("--id", help="Producer id.")],
    at: Annotated[str | None, typer.Option(help="Revoked from (RFC 3339); default now.")] = None,
    json: JsonOpt = False,
) -> None:
    """Revoke a producer key from an instant on."""
    from ledger.clock import SystemClock, format_rfc3339, parse_rfc3339

    when = format_rfc3339(parse_rfc3339(at) if at else SystemClock().now())
    _admin(data, json, lambda ledger: ledger.revoke_producer(controller, id, when))


@apikey_app.command("create")
@guarded
def apikey_create(
    data: DataOpt,
    role: Annotated[str, typer.Option(help="producer | auditor | admin")],
    controller: Annotated[
        list[str] | None, typer.Option(help="Controller(s) the key may use; repeatable.")
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Create an API key; the key is printed once and stored only as a hash."""
    from ledger.apikeys import ApiKeyStore
    from ledger.config import Config

    cfg = Config.load(data)
    store = ApiKeyStore(cfg.auth_db)
    try:
        token, key = store.create(role, tuple(controller or ()))
    finally:
        store.close()
    out({"api_key": token, "key_id": key.key_id, "role": role,
         "controllers": list(key.controllers)}, json, token)


@apikey_app.command("list")
@guarded
def apikey_list(data: DataOpt, json: JsonOpt = False) -> None:
    """Every API key: id, role, controllers, created, revoked (never a token or hash)."""
    from ledger.apikeys import ApiKeyStore
    from ledger.config import Config

    store = ApiKeyStore(Config.load(data).auth_db)
    try:
        records = store.list()
    finally:
        store.close()
    if json:
        out([r.to_dict() for r in records], True)
        return
    for r in records:
        state = f"revoked {r.revoked_at or ''}".strip() if r.revoked else "active"
        typer.echo(f"{r.key_id}  {r.role:<8}  {','.join(r.controllers) or '*':<24}  "
                   f"created {r.created_at}  {state}")


@apikey_app.command("revoke")
@guarded
def apikey_revoke(
    data: DataOpt,
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="From apikey list.")],
    json: JsonOpt = False,
) -> None:
    """Revoke an API key: refused (401) from the next request on, also by a running serve."""
    from ledger.apikeys import ApiKeyStore
    from ledger.config import Config

    store = ApiKeyStore(Config.load(data).auth_db)
    try:
        if not store.revoke(key_id):
            raise CliError(f"no API key {key_id!r} (see auditledger apikey list)")
        record = store.record(key_id)
    finally:
        store.close()
    assert record is not None
    out(record.to_dict(), json, f"revoked {key_id} at {record.revoked_at}")


# -- schema ----------------------------------------------------------------------------


@schema_app.command("list")
@guarded
def schema_list(json: JsonOpt = False) -> None:
    """Every event type: description and required data fields (GET /v1/schemas)."""
    from ledger.schemas import default_schemas

    entries = default_schemas().catalogue()
    if json:
        out(entries, True)
        return
    for e in entries:
        typer.echo(f"{e['type']}\n    {e['description']}\n    required in data: "
                   f"{', '.join(e['required']) or '(nothing)'}")


@schema_app.command("show")
@guarded
def schema_show(
    type_name: Annotated[str, typer.Argument(metavar="TYPE",
                                             help="An event type, or 'envelope'.")],
    json: JsonOpt = False,
) -> None:
    """The JSON Schema of TYPE's data (GET /v1/schemas/TYPE), indented."""
    from ledger.schemas import default_schemas

    schemas = default_schemas()
    if type_name == "envelope":
        doc = schemas.envelope_schema
    elif type_name in schemas.types:
        doc = schemas.schema_for(type_name)
    else:
        raise CliError(schemas.unknown_type_detail(type_name))
    typer.echo(orjson.dumps(doc, option=0 if json else orjson.OPT_INDENT_2).decode())


# -- emit --------------------------------------------------------------------------------


def _read_events(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") if str(path) != "-" else sys.stdin.buffer as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise CliError(f"{path}:{lineno}: not JSON: {exc}") from None
            if not isinstance(doc, dict):
                raise CliError(f"{path}:{lineno}: each line must be a JSON object")
            yield lineno, doc


@app.command()
@guarded
def emit(
    events_file: Annotated[Path, typer.Argument(metavar="EVENTS.jsonl", help="'-' for stdin.")],
    key: Annotated[Path | None, typer.Option(
        help="Producer private key (PEM): signs the lines that have no sig.")] = None,
    producer: Annotated[str | None, typer.Option(
        help="Producer id, for the lines that have no producer.")] = None,
    url: Annotated[str | None, typer.Option(help="Ledger API base URL.")] = None,
    api_key: Annotated[str | None, typer.Option(help="Producer API key (with --url).")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Ledger data dir.")] = None,
    batch: Annotated[int, typer.Option(help="Events per request.")] = 500,
    retries: Annotated[int, typer.Option(
        help="With --url: retries of a batch on a connection failure, 5xx or 429, with "
        "backoff from 0.2 s doubling to 10 s, plus 0-1 s of jitter (8: 33-39 s in all).")] = 8,
    timeout: Annotated[float, typer.Option(
        help="With --url: seconds to wait for each answer before it counts as failed.")
    ] = 60.0,
    json: JsonOpt = True,
) -> None:
    """Sign and send events; prints one result line per event.

    A line that already has ``sig`` is sent exactly as given (a wrong signature is the
    ledger's ``bad_signature``, never fixed here); a line without one gets ``spec``,
    ``event_id``, ``producer`` and ``occurred_at`` where it lacks them and is signed with
    ``--key`` (docs/producers.md).

    Exit 0: all taken (accepted or duplicate). Exit 1: an event was rejected, or the server
    failed or could not be reached (after the retries). Exit 2: bad input: flags, files,
    or a request the server refused (bad API key, key without the producer role, wrong
    URL). A failure is one line ``error: ...`` on stderr; lines already printed stand.
    """
    from rich.console import Console
    from rich.progress import Progress

    from ledger.client import Client, ClientError, DirectClient
    from ledger.envelope import complete
    from ledger.signing import load_private_key

    if (url is None) == (data is None):
        raise CliError("give exactly one of --url (with --api-key) or --data")
    if url and not api_key:
        raise CliError("--url needs --api-key")
    if not 1 <= batch <= 1000:
        raise CliError("--batch must be between 1 and 1000")
    if retries < 0:
        raise CliError("--retries must be >= 0")
    signing_key = load_private_key(key) if key is not None else None
    # stamina logs each scheduled retry as a bare "stamina.retry_scheduled" warning on
    # stderr; the one error line at the end says how many attempts were made.
    logging.getLogger("stamina").setLevel(logging.ERROR)
    if timeout <= 0:
        raise CliError("--timeout must be > 0")
    client: Any = (Client(url, api_key or "", retries=retries, timeout=timeout) if url
                   else DirectClient(data))  # type: ignore[arg-type]
    rejected = 0
    try:
        pending: list[dict[str, Any]] = []
        # The bar goes to stderr: stdout carries one result line per event.
        with Progress(console=Console(stderr=True), transient=True,
                      disable=not sys.stderr.isatty()) as progress:
            task = progress.add_task("emitting", total=None)

            def send() -> None:
                nonlocal rejected
                for res in client.submit(pending):
                    rejected += res["status"] == "rejected"
                    typer.echo(orjson.dumps(res).decode())
                progress.advance(task, len(pending))
                pending.clear()

            for lineno, doc in _read_events(events_file):
                if "sig" not in doc:
                    if signing_key is None or producer is None:
                        raise CliError(f"{events_file}:{lineno}: no sig: --key and "
                                       "--producer are needed to sign it")
                    doc = complete(doc, signing_key, producer)
                pending.append(doc)
                if len(pending) >= batch:
                    send()
            if pending:
                send()
    except ClientError as exc:
        fail(str(exc), exc.exit_code)
    finally:
        client.close()
    if rejected:
        raise typer.Exit(1)


# -- verify --------------------------------------------------------------------------------


@app.command()
@guarded
def verify(
    target: Annotated[Path | None, typer.Argument(metavar="BUNDLE_OR_DATA_DIR")] = None,
    log_key: Annotated[
        list[str] | None,
        typer.Option(help="Pinned log verifier key(s); default: the one the target carries "
                     "(with --url/--state: the remembered one, else trusted on first use)."),
    ] = None,
    url: Annotated[str | None, typer.Option(help="Audit a live ledger at this URL.")] = None,
    api_key: Annotated[str | None, typer.Option(help="Auditor API key (with --url).")] = None,
    controller: Annotated[str | None, typer.Option(help="Controller (with --url).")] = None,
    state: Annotated[Path | None, typer.Option(
        help="Remembered checkpoints (default with --url: "
             "$XDG_STATE_HOME/auditledger/checkpoints.json).")] = None,
    witness: Annotated[list[str] | None, typer.Option(
        help="Witness cosigner verifier key (repeat).")] = None,
    quorum: Annotated[int, typer.Option(
        help="Valid cosignatures required from the --witness keys.")] = 0,
    timeout: Annotated[float, typer.Option(
        help="With --url: seconds to wait for each answer.")] = 30.0,
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(help="A signed checkpoint note you already hold (file); the bundle "
                     "must agree with it and not be older (repeatable)."),
    ] = None,
    json: JsonOpt = False,
) -> None:
    """Check a whole log or an evidence bundle offline, or audit a live ledger (--url);
    exit 0 only if everything verifies."""
    live = _audit_options(target, url, api_key, controller, witness or [], quorum)
    if live:
        if timeout <= 0:
            raise CliError("--timeout must be > 0")
        _audit_live(url, api_key, controller, state, log_key, witness or [], quorum, json,
                    timeout)
        return
    from ledger.verify import open_target, verify_source

    assert target is not None
    source, keys = open_target(target)
    try:
        held = [p.read_text(encoding="utf-8") for p in checkpoint or []]
        report = verify_source(source, log_key or keys, held=held)
        remembered = (_audit_bundle_state(source, target, state, log_key, keys,
                                          witness or [], quorum)
                      if report.ok and (state or quorum) else None)
    finally:
        close = getattr(source, "close", None)
        if close:
            close()
    doc = report.to_dict()
    if remembered is not None and not remembered["ok"]:  # the memory or the witnesses
        doc["ok"] = False
        doc["problems"].append({"controller": remembered["controller"], "event_id": None,
                                "index": None, "problem": remembered["problem"],
                                "detail": remembered["detail"]})
        typer.echo(f"error: {remembered['detail']}", err=True)
    elif remembered is not None:
        doc["state"] = remembered
    warnings = [] if log_key else [
        "log key taken from the bundle, not pinned with --log-key: this shows the bundle is "
        "intact, not that it comes from the ledger you trust"
        if hasattr(source, "verify_report") else
        "log key taken from the data directory, not pinned with --log-key"]
    doc["warnings"] = warnings
    if json:
        out(doc, True)
    else:
        for cid, info in doc["controllers"].items():
            typer.echo(_summary(cid, info, doc["ok"]))
        for p in doc["problems"]:
            typer.echo(f"PROBLEM {p['controller']} index={p['index']} "
                       f"event={p['event_id']}: {p['problem']}: {p['detail']}")
        for w in warnings:
            typer.echo(f"WARNING: {w}")
        typer.echo("OK: everything verifies" if doc["ok"] else
                   f"FAILED: {len(doc['problems'])} problem(s)")
    if not doc["ok"]:
        raise typer.Exit(1)


def _audit_options(target: Path | None, url: str | None, api_key: str | None,
                   controller: str | None, witnesses: list[str], quorum: int) -> bool:
    """Which verify this is (True: live ``--url``), refusing option mixes as bad input."""
    if url is not None:
        if target is not None:
            raise CliError("give either BUNDLE_OR_DATA_DIR or --url, not both")
        if not api_key or not controller:
            raise CliError("--url needs --api-key and --controller")
    elif target is None:
        raise CliError("give BUNDLE_OR_DATA_DIR, or --url URL --api-key KEY --controller ID")
    if quorum < 0 or quorum > len(set(witnesses)):
        raise CliError(f"--quorum {quorum} needs at least that many distinct --witness keys")
    if witnesses and not quorum:
        raise CliError("--witness needs --quorum N (how many must have cosigned)")
    return url is not None


def _auditor_state(state: Path | None) -> Any:
    from ledger.auditor import State, default_state_file

    return State(state or default_state_file())


def _warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def _audit_live(url: Any, api_key: Any, controller: Any, state: Path | None,
                log_key: list[str] | None, witnesses: list[str], quorum: int,
                as_json: bool, timeout: float = 30.0) -> None:
    """``verify --url``: exit 1 on a fork, rollback or bad signature, 2 when the audit
    could not be made; one line either way (docs/witnesses.md)."""
    from ledger.auditor import AuditFailed, AuditUnavailable, audit_url

    try:
        doc = audit_url(url, api_key, controller, _auditor_state(state), log_keys=log_key,
                        witnesses=witnesses, quorum=quorum, timeout=timeout, warn=_warn)
    except AuditUnavailable as exc:
        fail(str(exc))
    except AuditFailed as exc:
        if as_json:
            out({"ok": False, "controllers": {}, "controller": controller, "problems": [{
                "controller": controller, "event_id": None, "index": None,
                "problem": exc.code, "detail": str(exc)}]}, True)
        fail(str(exc), 1)
    witnessed = f", cosigned by {', '.join(doc['cosigned_by'])}" if doc["cosigned_by"] else ""
    linked = "; consistent with " + ", ".join(
        f"size {p['size']}" for p in doc["previous"]) if doc["previous"] else \
        "; first visit, remembered"
    out(doc, as_json, f"OK: {doc['origin']} size {doc['size']} root {doc['root']}"
                      f"{witnessed}{linked} ({doc['state']})")


def _audit_bundle_state(source: Any, target: Path, state: Path | None,
                        pinned: list[str] | None, carried: list[str],
                        witnesses: list[str], quorum: int) -> dict[str, Any] | None:
    """``verify BUNDLE --state FILE`` / ``--witness … --quorum N`` on a bundle that
    verified: its checkpoints against the remembered ones, its cosignatures. A failed
    check comes back as ``{"ok": False, "problem", "detail"}`` for the report."""
    from ledger.auditor import AuditFailed, AuditUnavailable, State, audit_bundle

    controllers = source.controllers()
    if not hasattr(source, "verify_report") or len(controllers) != 1:
        raise CliError("--state and --quorum check an evidence bundle (or use --url)")
    (cid,) = controllers
    # The bundle's checkpoints, oldest first, with their cosignature lines; the last is
    # the newest the ledger had signed when the bundle was made (docs/verification.md).
    notes = [cp.note for cp in sorted(source.checkpoints(cid), key=lambda c: c.size)]
    try:
        return audit_bundle(
            cid, notes, State(state),
            source=str(target), log_keys=pinned, announced=carried[0] if carried else None,
            witnesses=witnesses, quorum=quorum, warn=_warn)
    except AuditUnavailable as exc:
        fail(str(exc))
    except AuditFailed as exc:
        return {"ok": False, "problem": exc.code, "detail": str(exc), "controller": cid}
    return None  # pragma: no cover - fail() raises


def _summary(controller: str, info: dict[str, Any], ok: bool) -> str:
    """One line per controller: for a bundle, what it is complete for."""
    if "range" not in info:
        return (f"{controller}: {info['size']} events, root {info['root']}, "
                f"{info['checkpoints']} checkpoints")
    a, b = info["range"]
    period, received = info["period"], info["received"]
    word = "complete" if ok else "NOT verified"
    return (f"{controller}: {word}: leaves {a}..{b - 1} of tree size {info['size']}, period "
            f"{period['from'] or 'log start'} .. {period['to'] or 'end checkpoint'} "
            f"(received {received['from'] or 'log start'} .. {received['to']}); "
            f"{info.get('events', 0)} events in the bundle, "
            f"{info.get('period_events', 0)} in the period, "
            f"{info.get('context_events', 0)} context; newest tree size {info['latest']}")


@app.command()
@guarded
def evidence(
    url: Annotated[str, typer.Option(help="The ledger's base URL.")],
    api_key: Annotated[str, typer.Option(help="An auditor or admin API key.")],
    controller: Annotated[str, typer.Option(help="Controller id.")],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the zip.")],
    from_: Annotated[str | None, typer.Option("--from", help="Period start (RFC 3339 or "
                                              "YYYY-MM-DD, on occurred_at).")] = None,
    to: Annotated[str | None, typer.Option(help="Period end (exclusive).")] = None,
    json: JsonOpt = False,
) -> None:
    """Fetch an evidence bundle from a running ledger, streamed to --out; check it with
    ``auditledger verify FILE --log-key KEY``."""
    import time

    import httpx

    params = {k: v for k, v in (("from", from_), ("to", to)) if v is not None}
    tmp = out_file.with_name(out_file.name + ".part")
    size = 0
    try:
        for attempt in range(30):
            with httpx.stream("GET", f"{url.rstrip('/')}/v1/controllers/{controller}/evidence",
                              params=params, headers={"Authorization": f"Bearer {api_key}"},
                              timeout=600.0) as resp:
                if resp.status_code == 503 and attempt < 29:
                    # the read side is catching up (the report must cover every event)
                    time.sleep(min(float(resp.headers.get("Retry-After") or 1), 5.0))
                    continue
                if resp.status_code != 200:
                    resp.read()
                    from ledger.client import _reason

                    fail(f"evidence: {_reason(resp)}", 2 if resp.status_code < 500 else 1)
                with tmp.open("wb") as f:
                    for chunk in resp.iter_bytes(1 << 16):
                        f.write(chunk)
                        size += len(chunk)
                break
    except httpx.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        fail(f"evidence: {url}: {exc}", 1)
    tmp.replace(out_file)
    out({"out": str(out_file), "bytes": size}, json, f"{out_file}: {size} bytes")


# -- demo and bench ------------------------------------------------------------------------


@app.command()
@guarded
def demo(
    data: Annotated[Path, typer.Option("--data", help="Where to put the demo ledger.")] = Path(
        "demo-data"
    ),
    port: Annotated[int, typer.Option(help="Port for the API after loading.")] = 8080,
    load_only: Annotated[bool, typer.Option("--load-only", help="Load, verify, stop.")] = False,
    json: JsonOpt = False,
) -> None:
    """Load the example controllers from the seeds, verify the log, then serve it."""
    from ledger.demo import load_demo

    summary = load_demo(data, progress=not json, port=port)
    out(summary, json, summary["text"])
    serve_cmd = _plugin_command("serve")
    if not load_only and serve_cmd is not None:
        serve_cmd(data=data, port=port)


@app.command()
@guarded
def bench(
    events: Annotated[int, typer.Option(help="Events to ingest.")] = 100_000,
    backend: Annotated[str, typer.Option(help="sqlite | kafka")] = "sqlite",
    batch: Annotated[int, typer.Option(help="Events per ingest batch.")] = 1000,
    workers: Annotated[int | None, typer.Option(help="Signature worker processes.")] = None,
    kafka: Annotated[str | None, typer.Option(help="Kafka bootstrap for --backend kafka.")] = None,
    sequencers: Annotated[int, typer.Option(
        help="Kafka: sequencer processes, one per events partition.")] = 1,
    json: JsonOpt = False,
) -> None:
    """Ingest benchmark: signed events/s through validation, signature check and append."""
    from bench.ingest import run

    result = run(events=events, backend=backend, batch=batch, workers=workers, kafka=kafka,
                 sequencers=sequencers)
    out(result, json, result["text"])


# -- plugins -------------------------------------------------------------------------------

_plugins: dict[str, Any] = {}


def _plugin_command(name: str) -> Any:
    return _plugins.get(name)


def _broken_plugin(name: str, exc: Exception) -> Callable[..., None]:
    """Stands in for a command whose module failed to import: the write-side commands keep
    working, and this one says why it cannot run."""

    def broken(args: Annotated[list[str] | None, typer.Argument(hidden=True)] = None) -> None:
        fail(f"the '{name}' command is unavailable: {type(exc).__name__}: {exc}")

    broken.__doc__ = f"(unavailable: {type(exc).__name__})"
    return broken


def _load_plugins() -> None:
    """Attach command groups and commands other packages register.

    An entry point may name a ``typer.Typer`` (added as a group under the entry point's
    name) or a plain function (added as a single command under that name).
    """
    if _plugins:
        return
    for ep in entry_points(group="auditledger.commands"):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken read side must not take the ledger's CLI down
            obj = _broken_plugin(ep.name, exc)
        _plugins[ep.name] = obj
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=ep.name)
        else:
            app.command(name=ep.name)(obj)


# Built-in groups defined in their own module: ``subject`` and ``keys``.
from ledger.subject_cli import install as _install_subject_commands  # noqa: E402

_install_subject_commands(app, guarded)


def main() -> None:
    _load_plugins()
    from ledger.producer.cli import install as _install_producer_commands

    _install_producer_commands(app, guarded)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
