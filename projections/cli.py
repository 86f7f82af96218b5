"""Read-side CLI groups, attached to ``auditledger`` through entry points (see pyproject)."""

from __future__ import annotations

import typer

deadline_app = typer.Typer(help="Compute legal deadlines.", no_args_is_help=True)
transfer_app = typer.Typer(help="Judge third-country transfers.", no_args_is_help=True)
