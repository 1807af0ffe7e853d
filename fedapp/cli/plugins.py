"""What ``fedapp strategies`` and ``fedapp models`` share: the listing of one plugin group."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedapp.cli.app import app
from fedapp.cli.output import warn
from fedapp.registry import BrokenPlugin, ModelPlugin, Param, StrategyPlugin

Plugins = Mapping[str, StrategyPlugin | ModelPlugin]


def listing_command(
    name: str, title: str, read: Callable[[], tuple[Plugins, Mapping[str, BrokenPlugin]]], doc: str
) -> None:
    """Add the command ``fedapp NAME [--json]``: :func:`print_plugins` of what ``read`` gives.

    ``read`` returns the group's working and broken plugins when the command
    runs (plugins may be installed or registered after it is declared).
    """

    def command(
        as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    ) -> None:
        plugins, broken = read()
        print_plugins(title, plugins, broken, as_json)

    command.__doc__ = (
        f"{doc}\n\nA plugin that fails to load is listed as broken, with its error; the "
        "others work as usual."
    )
    app.command(name)(command)


def print_plugins(
    title: str,
    plugins: Plugins,
    broken: Mapping[str, BrokenPlugin],
    as_json: bool,
) -> None:
    """Print the working plugins with their parameters, and the broken ones with their errors.

    As JSON (``as_json``) only the working plugins go to stdout; each broken
    one is a warning on stderr.
    """
    if as_json:
        for plugin in broken.values():
            warn(plugin.error)
        listing = [
            {"name": p.name, "summary": p.summary, "params": [_param(q) for q in p.params]}
            for p in plugins.values()
        ]
        sys.stdout.write(json.dumps(listing, indent=2) + "\n")
        return
    table = Table(title=title)
    table.add_column("name", style="bold")
    table.add_column("summary")
    table.add_column("parameters")
    for p in plugins.values():
        params = "\n".join(
            f"--{q.name} ({q.type_text}, default {q.default_text}): {q.help}" for q in p.params
        )
        table.add_row(escape(p.name), escape(p.summary), escape(params) or "-")
    for b in broken.values():
        table.add_row(f"{escape(b.name)} [red](broken)[/]", escape(b.error), "-")
    Console().print(table)


def _param(param: Param) -> dict[str, Any]:
    return {
        "name": param.name,
        "type": param.type.__name__,
        "many": param.many,
        "default": param.default,
        "help": param.help,
        "choices": param.choices,
        "minimum": param.minimum,
        "greater_than": param.greater_than,
        "less_than": param.less_than,
    }
