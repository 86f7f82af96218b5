"""``auditledger subject erase|lookup`` and ``auditledger keys rotate-kek|backup``.

Kept apart from ledger/cli.py, which attaches these groups with ``install`` and its own
``guarded`` (passed in, so this module does not import the CLI module back). Failures are
one line with their stable code first (``unknown_subject: …``, ``kek_mismatch: …``) and
exit status 2, like every command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

DataOpt = Annotated[Path, typer.Option("--data", help="Ledger data directory.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def install(app: typer.Typer, guarded: Callable[[Any], Any]) -> None:
    """Attach ``subject`` and ``keys`` to ``app``, each command wrapped by ``guarded``
    (ledger/cli.py: expected failures, ``SubjectError`` among them, become one line)."""
    subject_app = typer.Typer(help="Look up and erase data subjects (crypto-shredding).",
                              no_args_is_help=True)
    keys_app = typer.Typer(help="The key store: rotate the KEK, back it up.",
                           no_args_is_help=True)
    subject_app.command("erase")(guarded(subject_erase))
    subject_app.command("lookup")(guarded(subject_lookup))
    keys_app.command("rotate-kek")(guarded(keys_rotate_kek))
    keys_app.command("backup")(guarded(keys_backup))
    app.add_typer(subject_app, name="subject")
    app.add_typer(keys_app, name="keys")


def out(doc: Any, as_json: bool, human: str) -> None:
    typer.echo(orjson.dumps(doc).decode() if as_json else human)


def _with_ledger(data: Path, action: Any) -> Any:
    from ledger.service import Ledger

    ledger = Ledger.open(data)
    try:
        return action(ledger)
    finally:
        ledger.close()


def _keys_line(keys: dict[str, Any]) -> str:
    erased = f", erased at {keys['erased_at']}" if keys["erased_at"] else ""
    return f"keys: {len(keys['live'])} live, {len(keys['destroyed'])} destroyed{erased}"


def subject_erase(
    data: DataOpt,
    controller: Annotated[str, typer.Option(help="Controller id.")],
    subject: Annotated[str, typer.Option(help="The subject's pseudonym (psn:…).")],
    request: Annotated[str | None, typer.Option(
        help="The rights request (right erasure) this erasure fulfils.")] = None,
    reason: Annotated[str | None, typer.Option(help="Why (no personal data).")] = None,
    json: JsonOpt = False,
) -> None:
    """Record subject.erased (signed with the controller's admin key) and destroy the
    subject's keys: its sealed fields can no longer be read; every proof still verifies."""
    doc = _with_ledger(data, lambda lg: lg.erase_subject(controller, subject, request,
                                                         reason))
    out(doc, json, f"erased: {subject} by event {doc['event_id']} at index {doc['index']}; "
        f"{len(doc['key_ids'])} key(s) destroyed")


def subject_lookup(
    data: DataOpt,
    controller: Annotated[str, typer.Option(help="Controller id.")],
    identifier: Annotated[str, typer.Option(help="E-mail address or phone number.")],
    json: JsonOpt = False,
) -> None:
    """The pseudonym of an identifier, the subject's records and its key state."""
    doc = _with_ledger(data, lambda lg: lg.lookup_subject(controller, identifier))
    lines = [f"{doc['subject']}: {len(doc['records'])} record(s); {_keys_line(doc['keys'])}"]
    lines += [f"  {r['index']:>6}  {r['occurred_at']}  {r['type']}  {r['event_id']}"
              for r in doc["records"]]
    out(doc, json, "\n".join(lines))


def keys_rotate_kek(
    data: DataOpt,
    new_kek_file: Annotated[Path, typer.Option(help="File holding the new KEK (base64).")],
    json: JsonOpt = False,
) -> None:
    """Rewrap every key of the key store under a new KEK (the log is not touched)."""
    from ledger.config import Config
    from ledger.kek import kek_source
    from ledger.keystore import rotate_kek

    cfg = Config.load(data)
    n = rotate_kek(cfg, new_kek_file.read_text())
    source = kek_source(cfg)
    note = ("the KEK file was replaced" if source == "file" else
            f"switch the {source} source to the new KEK before the next start")
    out({"rewrapped": n, "kek_source": source}, json, f"{n} key(s) rewrapped; {note}")


def keys_backup(
    data: DataOpt,
    out_file: Annotated[Path, typer.Option("--out", help="Backup file to write.")],
    json: JsonOpt = False,
) -> None:
    """A consistent copy of the key store (useless without the KEK: keep them apart)."""
    from ledger.config import Config
    from ledger.keystore import open_keystore

    if out_file.exists():
        raise ValueError(f"{out_file} exists; not overwriting a backup")
    store = open_keystore(Config.load(data))
    try:
        store.backup(out_file)
    finally:
        store.close()
    out({"out": str(out_file), "bytes": out_file.stat().st_size}, json,
        f"{out_file}: key-store backup written")
