"""``fedapp strategies``: the installed strategy plugins and their parameters."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedapp import registry
from fedapp.cli.app import app
from fedapp.cli.output import warn


@app.command()
def strategies(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the installed strategy plugins and their parameters.

    A plugin that fails to load is listed as broken, with its error; the others
    work as usual.
    """
    plugins = registry.installed()
    broken = registry.broken()
    if as_json:
        for plugin in broken.values():
            warn(plugin.error)
        listing = [
            {
                "name": p.name,
                "summary": p.summary,
                "params": [
                    {
                        "name": q.name,
                        "type": q.type.__name__,
                        "default": q.default,
                        "help": q.help,
                        "choices": q.choices,
                        "minimum": q.minimum,
                    }
                    for q in p.params
                ],
            }
            for p in plugins.values()
        ]
        sys.stdout.write(json.dumps(listing, indent=2) + "\n")
        return
    table = Table(title="Installed strategies")
    table.add_column("name", style="bold")
    table.add_column("summary")
    table.add_column("parameters")
    for p in plugins.values():
        params = "\n".join(
            f"--{q.name} ({q.type.__name__}, default {q.default!r}): {q.help}" for q in p.params
        )
        table.add_row(p.name, p.summary, params or "-")
    for b in broken.values():
        table.add_row(f"{b.name} [red](broken)[/]", escape(b.error), "-")
    Console().print(table)
