"""Start, stop and resume runs as separate ``fedapp simulate`` / ``fedapp resume`` processes.

A run launched here is an ordinary CLI run: the UI writes the settings to a
file, starts ``python -m fedapp simulate --config FILE --run-dir DIR`` in its
own session (so it outlives a restart of the UI) and from then on only reads
the run directory. Until that directory exists, the launch record and the
process's log (both in the runs folder's ``.fedapp-ui/launches``) tell whether
the run is still starting or could not start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fedapp.errors import UsageError
from fedapp.runs import RunDir, RunState, is_pid, new_run_id, process_alive
from fedapp.runs.resuming import resumable
from fedapp.settings import RunConfig
from fedapp_ui import store

# How long a stopped run may take to mark itself `stopped` and exit before its
# processes are killed.
STOP_GRACE_SECONDS = 20.0


@dataclass(frozen=True)
class Launch:
    """A run the UI started whose directory may not exist yet.

    Attributes
    ----------
    run_id : str
        The run's name (its directory under the runs folder).
    pid : int
        The ``fedapp simulate`` process.
    alive : bool
        Whether that process still runs.
    log : str
        The last lines it printed (its notes, progress, or error).

    """

    run_id: str
    pid: int
    alive: bool
    log: str

    @property
    def error(self) -> str | None:
        """The ``error:`` line of a process that ended without making its run."""
        if self.alive:
            return None
        lines = [line.strip() for line in self.log.splitlines() if line.strip()]
        for line in reversed(lines):
            if line.startswith("error:"):
                return line.removeprefix("error:").strip()
        return lines[-1] if lines else "the run's process ended before creating its directory"


def launch(cfg: RunConfig, root: Path, name: str | None = None) -> str:
    """Start ``cfg`` as a new run under ``root``; return the run's name at once.

    Parameters
    ----------
    cfg : RunConfig
        The checked settings.
    root : Path
        The runs folder.
    name : str | None
        The run's name; ``None`` generates ``<time>-<strategy>-<hex>``.

    Raises
    ------
    UsageError
        For an unsafe name or one that is taken.

    """
    run_id = name or new_run_id(cfg.strategy)
    path = store.run_path(root, run_id)
    store.ui_folder(root, "launches")
    previous = launch_of(root, run_id)
    if path.exists() or (previous and previous.alive):
        raise UsageError(f"a run called {run_id!r} already exists; choose another name")
    store.forget_launch(root, run_id)  # a launch of that name that never made its run
    _, _, settings = store.launch_files(root, run_id)
    settings.write_text(json.dumps(cfg.replace(run_dir=None).to_dict(), indent=2), "utf-8")
    _start(root, run_id, ["simulate", "--config", str(settings), "--run-dir", str(path)])
    return run_id


def launch_study(
    cfg: RunConfig, root: Path, name: str, trials: int, strategies: Sequence[str] = ()
) -> str:
    """Start a tuning study of ``trials`` trials over ``cfg`` as ``fedapp tune``; return its name.

    The study's folder ``name`` in ``root`` gets ``study.db``, a run directory
    per trial and ``best.toml``; a folder that holds a study continues it.

    Raises
    ------
    UsageError
        For an unsafe name, one a run has taken, or a study still running.

    """
    folder = store.study_path(root, name)
    store.ui_folder(root, "launches")
    previous = launch_of(root, name)
    if previous and previous.alive:
        raise UsageError(f"study {name!r} is still running; wait for it or stop it")
    store.forget_launch(root, name)
    _, _, settings = store.launch_files(root, name)
    settings.write_text(json.dumps(cfg.replace(run_dir=None).to_dict(), indent=2), "utf-8")
    command = ["tune", "--config", str(settings), "--study-dir", str(folder)]
    command += ["--trials", str(trials)]
    if strategies:
        command += ["--strategies", ",".join(strategies)]
    _start(root, name, command)
    return name


def resume(root: Path, run_id: str) -> int:
    """Continue run ``run_id`` from its newest checkpoint as ``fedapp resume``.

    Returns
    -------
    int
        The checkpoint's round: the run goes on after it.

    Raises
    ------
    UsageError
        When the run cannot be resumed (its process is alive, it has no
        checkpoint, its settings changed): checked here, before any process starts.

    """
    path = store.run_path(root, run_id)
    checkpoint = resumable(path).checkpoint
    store.ui_folder(root, "launches")
    _start(root, run_id, ["resume", str(path.resolve())])
    return checkpoint.round


def _start(root: Path, name: str, args: list[str]) -> None:
    """Run ``fedapp ARGS`` in its own session, its output in the launch log of ``name``."""
    record, log, _ = store.launch_files(root, name)
    command = [sys.executable, "-m", "fedapp", *args]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root.resolve(),
            start_new_session=True,  # its own process group: stopped as one
        )
    record.write_text(
        json.dumps({"pid": process.pid, "command": command, "started": time.time()}), "utf-8"
    )


def launch_of(root: Path, run_id: str) -> Launch | None:
    """The UI's record of launching ``run_id``, or ``None`` if it launched no such run."""
    store.run_path(root, run_id)  # the name must be safe before it builds a path
    record_file, log, _ = store.launch_files(root, run_id)
    try:
        record = json.loads(record_file.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    pid = record.get("pid") if isinstance(record, dict) else None
    if not is_pid(pid):
        return None
    return Launch(run_id, pid, process_alive(pid), _tail(log))


def stop(root: Path, run_id: str) -> None:
    """Ask a running run to stop; it marks itself ``stopped`` and exits.

    Sends SIGTERM, which ``fedapp simulate`` turns into a clean stop. A
    watcher thread kills the process group if it is still alive after
    :data:`STOP_GRACE_SECONDS` and then marks the run ``stopped`` itself.

    Raises
    ------
    UsageError
        If the run is not running here.

    """
    path = store.run_path(root, run_id)
    pid: int | None = None
    if (path / "status.json").exists():
        view = store.load_run(root, run_id)
        if view.state is not RunState.RUNNING:
            raise UsageError(f"run {run_id} is not running (it is {view.state})")
        if not view.is_local:
            host = view.status.get("host", "another machine")
            raise UsageError(f"run {run_id} runs on {host}; stop it there")
        pid = view.status["pid"]
    else:  # still starting: stop the process the UI launched
        started = launch_of(root, run_id)
        pid = started.pid if started and started.alive else None
    if pid is None:
        raise UsageError(f"run {run_id} is not running on this machine; it cannot be stopped here")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    watcher = threading.Thread(target=_kill_if_stuck, args=(pid, path), daemon=True)
    watcher.start()


def _kill_if_stuck(pid: int, path: Path, grace: float | None = None) -> None:
    grace = STOP_GRACE_SECONDS if grace is None else grace
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return
        time.sleep(0.2)
    try:
        # Only a process the UI started leads its own group; never signal the
        # group of a run started from someone's shell.
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    run = RunDir(path)
    if run.status_file.exists():
        status = run.read_status()
        if status.get("state") == RunState.RUNNING:
            run.set_status(
                RunState.STOPPED, status.get("round", 0), status.get("rounds", 0),
                error=f"stopped (killed: it did not stop within {grace:g} s)",
            )  # fmt: skip


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
