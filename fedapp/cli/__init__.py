"""The ``fedapp`` command line: a typer app, one module per command group.

Heavy imports (TensorFlow, Flower, Ray, pandas) happen inside the commands
that need them, so ``--help``, ``fedapp strategies`` and ``fedapp models`` answer at once.
"""
# ruff: noqa: I001  (the command modules are imported in the order --help lists them)

from fedapp.cli.app import app

# Each module registers its commands with `app` when imported.
from fedapp.cli import run, tune, predict, strategies, models, runs, web, deploy  # noqa: F401


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
