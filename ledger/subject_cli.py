"""``auditledger subject erase|lookup`` and ``auditledger keys rotate-kek|backup``.

Kept apart from ledger/cli.py (which attaches these groups) so the command module stays
one subject per file. Failures are one line with their stable code first
(``unknown_subject: …``, ``kek_mismatch: …``) and exit status 2, like every command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ledger.cli import CliError, DataOpt, JsonOpt, _open, guarded, out

subject_app = typer.Typer(help="Look up and erase data subjects (crypto-shredding).",
                          no_args_is_help=True)
keys_app = typer.Typer(help="The key store: rotate the KEK, back it up.",
                       no_args_is_help=True)


def _with_ledger(data: Path, action: Any) -> Any:
    from ledger.subjects import SubjectError

    ledger = _open(data)
    try:
        return action(ledger)
    except SubjectError as exc:
        raise CliError(str(exc)) from None
    finally:
        ledger.close()


def _keys_line(keys: dict[str, Any]) -> str:
    erased = f", erased at {keys['erased_at']}" if keys["erased_at"] else ""
    return f"keys: {len(keys['live'])} live, {len(keys['destroyed'])} destroyed{erased}"


@subject_app.command("erase")
@guarded
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


@subject_app.command("lookup")
@guarded
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


@keys_app.command("rotate-kek")
@guarded
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


@keys_app.command("backup")
@guarded
def keys_backup(
    data: DataOpt,
    out_file: Annotated[Path, typer.Option("--out", help="Backup file to write.")],
    json: JsonOpt = False,
) -> None:
    """A consistent copy of the key store (useless without the KEK: keep them apart)."""
    from ledger.config import Config
    from ledger.keystore import open_keystore

    if out_file.exists():
        raise CliError(f"{out_file} exists; not overwriting a backup")
    store = open_keystore(Config.load(data))
    try:
        store.backup(out_file)
    finally:
        store.close()
    out({"out": str(out_file), "bytes": out_file.stat().st_size}, json,
        f"{out_file}: key-store backup written")
