"""``auditledger subject export-key``: the producer client's one command.

Attached by ``install`` into the ``subject`` group if the CLI already has one (the
erasure commands' ``subject erase|lookup``), else into a new one, so the two never shadow
each other whichever is registered first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

_installed: set[int] = set()


def subject_export_key(
    data: Annotated[Path, typer.Option("--data", help="Ledger data directory.")],
    controller: Annotated[str, typer.Option(help="Controller whose subject key to export.")],
    out_file: Annotated[Path, typer.Option("--out", help="Key file to write (mode 0600).")],
    json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Export the controller's subject key for a producer that pseudonymises itself
    (``Producer(subject_key_file=...)``; docs/producer-client.md). Run by an admin on the
    ledger host; prints the key's fingerprint, never the key."""
    from ledger.producer.keys import export_subject_key
    from ledger.service import Ledger

    ledger = Ledger.open(data)
    try:
        doc = export_subject_key(ledger, controller, out_file)
    finally:
        ledger.close()
    typer.echo(orjson.dumps(doc).decode() if json else
               f"subject key of {controller} ({doc['fingerprint']}) written to {out_file}")


def install(app: typer.Typer, guarded: Callable[[Any], Any]) -> None:
    if id(app) in _installed:
        return
    _installed.add(id(app))
    group = next((g.typer_instance for g in app.registered_groups
                  if g.name == "subject" and g.typer_instance is not None), None)
    if group is None:
        group = typer.Typer(help="Data subjects: pseudonyms and their keys.",
                            no_args_is_help=True)
        app.add_typer(group, name="subject")
    group.command("export-key")(guarded(subject_export_key))
