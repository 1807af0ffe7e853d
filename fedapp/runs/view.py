"""One read model of a run, shared by the CLI and the UI.

A :class:`RunView` is what a run directory says, read once: its settings,
its recorded status, its summary once it has finished or was stopped, and the state a
reader should show (:class:`~fedapp.runs.state.RunState`), including the
inferred ``starting`` and ``interrupted``. It reads files only, never the
engine, so any process on any machine with the folder can show a run.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeGuard

from fedapp.runs.directory import STATES, RunDir, client_label
from fedapp.runs.events import Event
from fedapp.runs.metrics import metric_names, primary, task_of
from fedapp.runs.state import RunState
from fedapp.runs.study import is_study


def is_pid(value: object) -> TypeGuard[int]:
    """Whether ``value`` can be one process's id (a positive integer)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def process_alive(pid: object) -> bool:
    """Whether process ``pid`` runs on this machine (reaping it if it is our finished child).

    Anything but a positive integer is no process: 0 and negative numbers
    name process groups to ``kill``, never one run.
    """
    if not is_pid(pid):
        return False
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass  # not our child: ask the kernel below
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


@dataclass(frozen=True)
class RunView:
    """What one run directory says, read once.

    Attributes
    ----------
    run_id : str
        The run's name in its runs folder: the directory's (``<study>/<trial>``
        for a trial of a tuning study).
    path : Path
        The directory.
    config : dict
        ``config.json`` (empty while the run is being set up).
    status : dict
        ``status.json`` (empty while the run is being set up).
    summary : dict | None
        ``summary.json``, once the run has finished, or was stopped after a
        round whose global model it kept (then ``partial`` is true and
        ``round`` says which round the model and metrics are from).
    created : float
        When the run started (Unix time).

    """

    run_id: str
    path: Path
    config: dict[str, Any]
    status: dict[str, Any]
    summary: dict[str, Any] | None
    created: float

    @classmethod
    def read(cls, path: Path, name: str | None = None) -> RunView:
        """Read the run in directory ``path``, called ``name`` (its folder's name by default).

        A tuning study's trial is called ``<study>/<trial>`` in its runs folder.

        A file that is missing or being rewritten by another process reads as
        empty; so does a ``status.json`` whose state is not one a run records.
        The summary is read only once the run is ``finished`` or ``stopped``:
        before that, a leftover one says nothing about this run.
        """
        run = RunDir(path)
        config = _read(run.read_config) or {}
        status = _read(run.read_status) or {}
        if status.get("state") not in STATES:
            status = {}
        summarised = status.get("state") in (RunState.FINISHED, RunState.STOPPED)
        summary = _read(run.read_summary) if summarised else None
        started = status.get("started")
        created = float(started) if isinstance(started, int | float) else path.stat().st_mtime
        return cls(name or path.name, path, config, status, summary, created)

    @property
    def run_dir(self) -> RunDir:  # noqa: D102
        return RunDir(self.path)

    @cached_property
    def state(self) -> RunState:
        """The recorded state; ``starting`` before any, ``interrupted`` if its process is gone."""
        if "state" not in self.status:
            return RunState.STARTING
        state = RunState(self.status["state"])
        if state is RunState.RUNNING and not self.is_live:
            return RunState.INTERRUPTED
        return state

    @property
    def is_live(self) -> bool:
        """Whether the run's process is alive (``True`` if it cannot be told)."""
        if not self.is_local:
            return self.status.get("state") == RunState.RUNNING
        return process_alive(self.status["pid"])

    @property
    def is_local(self) -> bool:
        """Whether the run's process, as recorded, is on this machine."""
        return is_pid(self.status.get("pid")) and self.status.get("host") == socket.gethostname()

    @property
    def round(self) -> int:
        """The last round the run completed."""
        return int(self.status.get("round", 0))

    @property
    def rounds(self) -> int:
        """The rounds the run was asked for (an automatic run's most rounds)."""
        asked = self.config.get("rounds", 0)
        if not isinstance(asked, int):  # rounds auto: at most max-rounds
            asked = self.config.get("max-rounds") or 0
        return int(self.status.get("rounds", asked))

    @property
    def error(self) -> str | None:
        """Why the run failed or was stopped, if it says."""
        return self.status.get("error")

    @property
    def reason(self) -> str | None:
        """Why a finished run ended before its last round (its privacy budget, convergence)."""
        return self.status.get("reason") or (self.summary or {}).get("reason")

    @property
    def elapsed(self) -> float | None:
        """Seconds since the run started, or its wall time once it has finished."""
        if self.summary and "wall_seconds" in self.summary:
            return float(self.summary["wall_seconds"])
        started = self.status.get("started")
        if not isinstance(started, int | float):
            return None
        if self.state is RunState.RUNNING:
            return time.time() - started
        return self.status_mtime - started

    @property
    def status_mtime(self) -> float:
        """When ``status.json`` last changed (the run's creation if it has none)."""
        try:
            return self.run_dir.status_file.stat().st_mtime
        except OSError:
            return self.created

    @property
    def strategy(self) -> str:  # noqa: D102
        return str(self.config.get("strategy", "?"))

    @property
    def strategy_label(self) -> str:
        """The strategy and its parameters: ``fedprox (proximal-mu 0.1)``."""
        params = self.config.get("strategy-params") or {}
        # An unset optional parameter (e.g. weighted's client-weights) says nothing.
        shown = ", ".join(f"{k} {v}" for k, v in params.items() if v not in ("", None))
        return f"{self.strategy} ({shown})" if shown else self.strategy

    @property
    def data_label(self) -> str:
        """Where the rows came from and how they were split, in a few words."""
        cfg = self.config
        if cfg.get("client-data"):
            return f"{len(cfg['client-data'])} files, one per client"
        data = cfg.get("data", "demo")
        source = "demo" if data == "demo" else Path(str(data)).name
        return f"{source}, {cfg.get('partition')}, {cfg.get('clients')} clients"

    @property
    def partial_round(self) -> int | None:
        """The round a stopped run's summary and model are from (``None`` for a whole run)."""
        if not self.summary or not self.summary.get("partial"):
            return None
        return int(self.summary.get("round", self.round))

    @property
    def phase(self) -> dict[str, Any] | None:
        """What a running run does outside its rounds (start-up, statistics, baselines).

        ``status.json``'s ``phase``: ``name``, ``label`` (how people read it),
        ``done`` and ``total`` (``total`` is 0 when the step has no count).
        """
        phase = self.status.get("phase")
        if self.state is not RunState.RUNNING or not isinstance(phase, dict):
            return None
        return phase

    @cached_property
    def curves(self) -> dict[str, Any] | None:
        """``curves.json``: the final model's ROC, precision-recall and confusion matrix."""
        return _read(self.run_dir.read_curves)

    @property
    def task(self) -> str:
        """The run's task: ``binary``, ``multiclass`` or ``regression``."""
        return task_of(self.config, self.summary)

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The run's scores in display order (a multiclass run's per-class recalls last)."""
        return metric_names(self.task, ((self.summary or {}).get("federated") or {}).keys())

    @property
    def primary_metric(self) -> str:
        """The score the run's gaps and gains are told in (AUC, accuracy, RMSE)."""
        return primary(self.task)

    @property
    def privacy(self) -> dict[str, Any] | None:
        """The privacy spent (``mode``, ``epsilon``, ``delta``) of a finished DP run."""
        return (self.summary or {}).get("privacy") or None

    def final(self, metric: str, scope: str = "federated") -> float | None:
        """A final metric from ``summary.json`` (``federated``, ``centralized`` or ``gap``)."""
        if not self.summary:
            return None
        value = (self.summary.get(scope) or {}).get(metric)
        return float(value) if isinstance(value, int | float) else None

    def events(self) -> list[Event]:
        """Every event of ``metrics.jsonl`` so far (a torn or foreign line is skipped)."""
        return list(self.run_dir.read_events())

    def client_labels(self, short: bool = True) -> dict[str, str]:
        """Client id -> its name, from ``config.json``'s ``client-sources``.

        Parameters
        ----------
        short : bool
            ``True`` for the UI's names: ``France`` (split by a column), a file
            name, ``client 3``; ``False`` for :func:`client_label`'s, as the
            command line prints them: ``Geography=France``, a file name, ``#3``.

        """
        labels = {}
        for pid, source in enumerate(self.config.get("client-sources") or []):
            name = client_label(str(source))
            if short:
                name = name.partition("=")[2] or name
                name = name if name and not name.startswith("#") else f"client {pid}"
            labels[str(pid)] = name
        return labels


def list_runs(root: Path, accept: Callable[[str], bool] | None = None) -> list[RunView]:
    """Every run under ``root``, newest first.

    A run is a folder with a ``config.json``; hidden folders (such as the UI's
    own ``.fedapp-ui``) are skipped. The trials of a tuning study's folder
    (:mod:`fedapp.runs.study`) are runs too, named ``<study>/<trial>``.

    Parameters
    ----------
    root : Path
        The runs folder; a missing one holds no runs.
    accept : Callable[[str], bool] | None
        Keep only the runs whose name passes (e.g. the names a reader can open).

    """
    if not root.is_dir():
        return []
    runs = []
    for child, name in _run_folders(root):
        if accept is not None and not accept(name):
            continue
        if child.is_dir() and (child / "config.json").exists():
            try:
                runs.append(RunView.read(child, name))
            except OSError:
                continue  # deleted while listing
    return sorted(runs, key=lambda r: r.created, reverse=True)


def _run_folders(root: Path) -> Iterator[tuple[Path, str]]:
    """Each visible folder of ``root`` by name; a tuning study's trials as ``<study>/<trial>``."""
    for child in root.iterdir():
        if child.name.startswith("."):
            continue
        yield child, child.name
        if is_study(child):
            for trial in child.iterdir():
                if not trial.name.startswith("."):
                    yield trial, f"{child.name}/{trial.name}"


def _read(reader: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """Read one JSON file of a run; ``None`` if absent or mid-write by another tool."""
    try:
        value = reader()
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
