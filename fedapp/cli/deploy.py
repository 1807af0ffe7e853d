"""``fedapp certs`` and the checked launchers of Flower's processes (superlink, ...)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from fedapp.cli.app import app
from fedapp.cli.output import console, fail
from fedapp.deploy import processes as deploy
from fedapp.deploy.certs import generate
from fedapp.errors import UsageError


@app.command()
def certs(
    out: Annotated[Path, typer.Option(help="Folder for the certificates and keys.")],
    superlink_host: Annotated[
        list[str],
        typer.Option(
            help="DNS name or IP address the SuperLink is reached at (repeatable; "
            "each becomes a subject alternative name)."
        ),
    ],
    node: Annotated[
        list[str] | None,
        typer.Option(
            help="SuperNode name, one key pair each (repeatable).  [default: bank, telco, clinic]"
        ),
    ] = None,
    days: Annotated[int, typer.Option(help="Validity of the certificates.")] = 365,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """Make a CA, the SuperLink's TLS certificate and one key pair per SuperNode."""
    try:
        paths = generate(out, superlink_host, node or ["bank", "telco", "clinic"], days, overwrite)
    except UsageError as err:
        raise fail(str(err)) from None
    console.print(f"CA and SuperLink certificate in {out}; private keys are mode 0600.")
    for name, (_, public) in paths.node_keys.items():
        console.print(f"  {name}: register with `flwr supernode register {public}`")


_LAUNCH = {
    "context_settings": {"allow_extra_args": True, "ignore_unknown_options": True},
    "add_help_option": False,
}


@app.command(**_LAUNCH)
def superlink(ctx: typer.Context) -> None:
    """Check certificates, then run flower-superlink with the same arguments."""
    _launch("superlink", ctx.args)


@app.command(**_LAUNCH)
def superexec(ctx: typer.Context) -> None:
    """Wait for the SuperLink, then run flower-superexec with the same arguments."""
    _launch("superexec", ctx.args)


@app.command(**_LAUNCH)
def supernode(ctx: typer.Context) -> None:
    """Check keys, data file and SuperLink, then run flower-supernode with the same arguments."""
    _launch("supernode", ctx.args)


def _launch(role: str, args: list[str]) -> None:
    try:
        wait = float(os.environ.get("FEDAPP_SUPERLINK_WAIT", deploy.DEFAULT_WAIT))
    except ValueError:
        raise fail("FEDAPP_SUPERLINK_WAIT must be a number of seconds") from None
    # Flower's own --help (and --version) answer without anything to check.
    if not {"-h", "--help", "-V", "--version"} & set(args):
        try:
            deploy.preflight(role, args, wait)
        except UsageError as err:
            raise fail(f"{role}: {err}") from None
    sys.stdout.flush()
    sys.stderr.flush()
    deploy.exec_flower(role, args)
