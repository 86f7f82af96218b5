"""The ``auditledger`` command line.

Write-side commands live here. Read-side command groups (``deadline``, ``transfer``,
``projections``, ``serve``, ...) are contributed through the ``auditledger.commands``
entry-point group, so this module never imports ``projections`` or ``api``.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer

app = typer.Typer(
    name="auditledger",
    help="Event-sourced GDPR compliance audit ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _load_plugins() -> None:
    """Attach command groups and commands other packages register.

    An entry point may name a ``typer.Typer`` (added as a group under the entry point's
    name) or a plain function (added as a single command under that name).
    """
    for ep in entry_points(group="auditledger.commands"):
        obj = ep.load()
        if isinstance(obj, typer.Typer):
            app.add_typer(obj, name=ep.name)
        else:
            app.command(name=ep.name)(obj)


def main() -> None:
    _load_plugins()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
