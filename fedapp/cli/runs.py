"""``fedapp runs``: the runs of a folder, newest first, as the UI's Runs page lists them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedapp.cli.app import app
from fedapp.cli.output import console
from fedapp.runs import RunState, RunView, json_safe, list_runs

# How a state reads in the table: the ones that need a look stand out.
_STATE_STYLES = {
    RunState.RUNNING: "blue",
    RunState.STARTING: "blue",
    RunState.FINISHED: "green",
    RunState.FAILED: "red",
    RunState.STOPPED: "yellow",
    RunState.INTERRUPTED: "yellow",
    RunState.MISSING: "dim",
}


def run_row(view: RunView) -> dict[str, Any]:
    """One run as ``fedapp runs --json`` lists it.

    ``state`` is the one a reader shows: ``interrupted`` for a run recorded as
    ``running`` whose process on this machine is gone; ``federated_auc`` and
    ``wall_seconds`` are ``null`` until the run has them; ``model_round`` is
    the round of a stopped run's kept model (``null`` for a whole run).
    """
    return {
        "run": view.run_id,
        "state": str(view.state),
        "round": view.round,
        "rounds": view.rounds,
        "strategy": view.strategy_label,
        "federated_auc": view.final("auc"),
        "model_round": view.partial_round,
        "wall_seconds": None if view.elapsed is None else round(view.elapsed, 1),
        "path": str(view.path),
    }


@app.command()
def runs(
    runs_root: Annotated[
        Path, typer.Option("--runs-dir", help="Folder holding the run directories.")
    ] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the runs of a folder, newest first: state, rounds, strategy, AUC, wall time.

    A run recorded as running whose process on this machine is gone is listed
    as interrupted, as the UI shows it.
    """
    views = list_runs(runs_root)
    if as_json:
        sys.stdout.write(json.dumps(json_safe([run_row(v) for v in views]), indent=2) + "\n")
        return
    if not views:
        console.print(f"no runs in {escape(str(runs_root))}", highlight=False, soft_wrap=True)
        return
    table = Table(title=f"Runs in {escape(str(runs_root))}")
    table.add_column("run", style="bold")
    table.add_column("state")
    table.add_column("round", justify="right")
    table.add_column("strategy")
    table.add_column("federated AUC", justify="right")
    table.add_column("wall time", justify="right")
    for view in views:
        row = run_row(view)
        auc = row["federated_auc"]
        wall = row["wall_seconds"]
        table.add_row(
            escape(view.run_id),
            f"[{_STATE_STYLES[view.state]}]{view.state}[/]",
            f"{view.round}/{view.rounds}",
            escape(view.strategy_label),
            _auc(auc, row["model_round"]),
            "-" if wall is None else f"{wall:.1f} s",
        )
    Console().print(table)


def _auc(auc: float | None, model_round: int | None) -> str:
    """The AUC cell: a stopped run's says which round's model it scores."""
    if auc is None:
        return "-"
    return f"{auc:.4f}" if model_round is None else f"{auc:.4f} (round {model_round})"
