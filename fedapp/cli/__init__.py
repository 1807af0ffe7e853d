"""The ``fedapp`` command line: a typer app, one module per command group."""

from fedapp.cli.app import app, main

__all__ = ["app", "main"]
