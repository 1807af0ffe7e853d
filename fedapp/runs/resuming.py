"""What resuming a run does to its directory, and what it refuses.

:func:`resumable` checks, changing nothing, that a run may go on: its
process is gone, it has a checkpoint, and its settings are the
checkpoint's. :func:`reopen` then rewinds the records to the checkpoint
(``metrics.jsonl`` keeps the checkpointed rounds' events alone), records the
run as running in this process, and appends a ``resumed`` event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedapp.errors import UsageError
from fedapp.runs.checkpoints import Checkpoint, config_hash, latest, rounds_in
from fedapp.runs.directory import RunDir, write_text_atomic
from fedapp.runs.events import Scope, Stage
from fedapp.runs.recorder import Recorder
from fedapp.runs.state import RunState
from fedapp.runs.view import RunView, list_runs

# The ended states a run with a checkpoint goes on from (besides `interrupted`).
_UNFINISHED = (RunState.INTERRUPTED, RunState.STOPPED, RunState.FAILED)


@dataclass(frozen=True)
class Resumable:
    """A run that may go on, and the checkpoint it goes on from.

    Attributes
    ----------
    view : RunView
        The run as its directory says.
    checkpoint : Checkpoint
        Its newest checkpoint.

    """

    view: RunView
    checkpoint: Checkpoint

    @property
    def run_dir(self) -> RunDir:  # noqa: D102
        return self.view.run_dir


def resumable(path: Path, other_host: bool = False) -> Resumable:
    """Check that the run in ``path`` may be resumed; change nothing.

    Parameters
    ----------
    path : Path
        The run's directory.
    other_host : bool
        Resume a run whose process ran on another machine, which cannot be
        told to be gone from here.

    Raises
    ------
    UsageError
        When ``path`` holds no run, its process is alive (or on another
        machine, without ``other_host``), it has no checkpoint, or its
        ``config.json`` no longer matches the checkpoint's settings.

    """
    if not (path / "config.json").is_file():
        raise UsageError(f"{path} is not a run directory (it has no config.json)")
    view = RunView.read(path)
    state, status = view.state, view.status
    if state in (RunState.RUNNING, RunState.STARTING):
        if not view.is_local and status.get("pid") is not None and not other_host:
            raise UsageError(
                f"run {view.run_id} was started on host {status.get('host')}, where its "
                "process may still run; resume it there, or give --other-host once it is "
                "known to be gone"
            )
        if view.is_local and view.is_live:
            raise UsageError(
                f"run {view.run_id} is still running (pid {status.get('pid')}); stop it "
                "before resuming it"
            )
    checkpoint = latest(view.run_dir.checkpoints_dir)
    if checkpoint is None:
        raise UsageError(
            f"run {view.run_id} has no checkpoint to resume from (it ended before its first "
            "checkpoint, or ran with --checkpoint-every 0): start it again"
        )
    if config_hash(view.config) != checkpoint.config_hash:
        raise UsageError(
            f"run {view.run_id}'s config.json no longer matches its round {checkpoint.round} "
            "checkpoint's settings: it was changed since; a resumed run would not be that run"
        )
    return Resumable(view, checkpoint)


def newest_unfinished(root: Path) -> Path:
    """The newest run under ``root`` that did not finish and has a checkpoint.

    What a deployed ServerApp started with ``resume = true`` goes on with:
    one interrupted, stopped or failed, or recorded as running on another
    host (the ServerApp before a restart of its pod).

    Raises
    ------
    UsageError
        When no run under ``root`` can be resumed.

    """
    for view in list_runs(root):
        # "Running" on another host: a ServerApp whose pod was replaced, the
        # likeliest run to resume there (this host's live runs are left alone).
        elsewhere = view.state is RunState.RUNNING and not view.is_local
        if (view.state in _UNFINISHED or elsewhere) and latest_round(view.run_dir):
            return view.path
    raise UsageError(
        f"resume = true, but no run under {root} both ended unfinished and has a checkpoint"
    )


def latest_round(run_dir: RunDir) -> int:
    """The round of the run's newest checkpoint (0 without one)."""
    found = rounds_in(run_dir.checkpoints_dir)
    return found[-1] if found else 0


def rewind_metrics(run_dir: RunDir, last_round: int) -> int:
    """Keep the events of rounds up to ``last_round`` in ``metrics.jsonl``, atomically.

    A torn last line, of the process that died, goes too.

    Returns
    -------
    int
        How many lines were dropped.

    """
    if not run_dir.metrics_file.exists():
        return 0
    kept: list[str] = []
    dropped = 0
    with run_dir.metrics_file.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                keep = int(json.loads(line)["round"]) <= last_round
            except (ValueError, KeyError, TypeError):
                keep = False
            if keep and line.endswith("\n"):
                kept.append(line)
            else:
                dropped += 1
    write_text_atomic(run_dir.metrics_file, "".join(kept))
    return dropped


def reopen(
    run: Resumable, rounds: int, recorder: Recorder, details: dict[str, Any] | None = None
) -> None:
    """Rewind ``run``'s records to its checkpoint, mark it running here, say it resumed.

    Parameters
    ----------
    run : Resumable
        The run, as :func:`resumable` found it.
    rounds : int
        The rounds it now runs to (``status.json``'s ``rounds``).
    recorder : Recorder
        The resumed run's recorder, its clock at the checkpoint's time.
    details : dict[str, Any] | None
        Further fields of the ``resumed`` event (warnings, the rounds before).

    """
    run_dir, done = run.run_dir, run.checkpoint.round
    dropped = rewind_metrics(run_dir, done)
    run_dir.mark_started(rounds)
    # It is the same run: it keeps the time it started at.
    started = run.view.status.get("started", run.view.created)
    run_dir.set_status(RunState.RUNNING, done, rounds, started=started)
    recorder.event(
        done, Stage.RESUMED, Scope.FEDERATED, {},
        from_state=str(run.view.state), dropped_events=dropped, rounds=rounds,
        **(details or {}),
    )  # fmt: skip
