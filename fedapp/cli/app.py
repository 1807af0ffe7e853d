"""The typer app every command module registers with."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Federated learning across institutions on Flower: each keeps its rows, "
    "only weights, aggregate statistics and metrics travel.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
