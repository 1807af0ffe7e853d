"""How the commands talk to a person: errors, notes and warnings on stderr."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise (2: usage or data)."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def print_notes(loaded: Any) -> None:
    """Show what loading decided (notes) and what looks wrong (warnings)."""
    for note in loaded.notes:
        console.print(f"[dim]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    for warning in loaded.warnings:
        warn(warning)


def exit_now(code: int) -> None:
    """Exit at once: Flower's server thread cannot be cancelled once interrupted.

    The run directory is already marked ``stopped``; Ray's processes share
    this process's fate and end with it.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def warn(message: str) -> None:
    """Print ``message`` as a warning on stderr (as text: brackets in it are not markup)."""
    console.print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def skipped_line(event: Any) -> str | None:
    """One line saying an event's round was skipped, and why; ``None`` if it was not."""
    skipped = event.extra.get("skipped")
    if not skipped or event.stage != "fit":
        return None
    return f"round {event.round} skipped: {skipped}"


def failures_line(event: Any) -> str | None:
    """One line naming the clients an event's round lost and why; ``None`` if none failed."""
    failed = event.extra.get("failed") or []
    if not failed:
        return None
    who = ", ".join("?" if f["partition"] is None else str(f["partition"]) for f in failed)
    reasons = "; ".join(dict.fromkeys(str(f["reason"]) for f in failed))
    lost = f"{len(failed)} client(s) failed to {event.stage} (partition {who})"
    return f"round {event.round}: {lost}: {reasons}"
