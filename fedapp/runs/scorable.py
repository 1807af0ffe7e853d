"""Whether a run directory holds a model to score new rows with, said before anything loads it."""

from __future__ import annotations

from pathlib import Path

from fedapp.errors import UsageError
from fedapp.runs.state import RunState
from fedapp.runs.view import RunView


def scorable_run(path: Path) -> RunView:
    """The run in ``path``, if it has a model and its preprocessing to score rows with.

    A finished run qualifies, and so does a stopped one that kept the model of
    its last completed round (its view's ``partial_round`` says which).

    Raises
    ------
    UsageError
        For a path that is no run directory, a run that has not finished (or
        failed), or one whose ``model.keras`` or ``preprocessing.json`` is missing.

    """
    if not path.is_dir():
        raise UsageError(f"{path}: no such run directory")
    view = RunView.read(path)
    if not view.config:
        raise UsageError(f"{path}: not a run directory (it has no config.json)")
    state = view.state
    kept = state is RunState.STOPPED and view.partial_round is not None
    if state is not RunState.FINISHED and not kept:
        why = f": {view.error}" if state is RunState.FAILED and view.error else ""
        raise UsageError(
            f"run {view.run_id} has not finished (it is {state}{why}): it has no model "
            "to score with"
        )
    for needed in (view.run_dir.model_file, view.run_dir.preprocessing_file):
        if not needed.is_file():
            raise UsageError(
                f"run {view.run_id} has no {needed.name}: it has no model to score with"
            )
    return view
