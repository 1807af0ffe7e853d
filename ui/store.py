"""The runs folder as the UI sees it: listing, reading, deleting, uploads.

Everything here reads the run directories (``fedapp.runs``), never the
engine. Every name or path a user types goes through :func:`run_path` or
:func:`data_path`, which refuse anything that would leave its folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from fedapp.errors import UsageError
from fedapp.runs import RunDir, client_label

# The UI's own files (uploads, launch records and logs) live in the runs
# folder, under a name no run can take (run names cannot start with a dot).
UI_DIR = ".fedapp-ui"
DATA_SUFFIXES = (".csv", ".parquet")
LAUNCH_SUFFIXES = (".json", ".log", ".settings.json")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def folders() -> tuple[Path, Path]:
    """The runs folder and the data folder the UI was started with (``fedapp ui``)."""
    runs = Path(os.environ.get("FEDAPP_UI_RUNS_DIR", "runs")).resolve()
    return runs, Path(os.environ.get("FEDAPP_UI_DATA_DIR", str(runs))).resolve()


def run_path(root: Path, name: str) -> Path:
    """The directory of the run called ``name``: always a direct child of ``root``.

    Raises
    ------
    UsageError
        For an empty name, a path (``a/b``, ``../x``, ``/etc``) or a name
        with characters other than letters, digits, ``.``, ``_`` and ``-``.

    """
    if not _NAME.fullmatch(name) or ".." in name:
        raise UsageError(
            f"run name {name!r} is not allowed: use up to 100 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (no paths)"
        )
    path = root.resolve() / name
    if path.parent != root.resolve():  # belt and braces: a name is never a path
        raise UsageError(f"run name {name!r} leaves the runs folder")
    return path


def data_path(root: Path, typed: str) -> Path:
    """Resolve a data file typed by the user inside the data folder ``root``.

    Relative paths are taken from ``root``; absolute ones must lie inside it.
    Symbolic links are followed before the check, so none can lead outside.

    Raises
    ------
    UsageError
        For a path outside ``root``, a missing file, or not a CSV/Parquet file.

    """
    text = typed.strip()
    if not text:
        raise UsageError("give the path of a CSV or Parquet file")
    base = root.resolve()
    try:
        path = (base / text).resolve()  # an absolute `text` replaces `base` here
        inside = path.is_relative_to(base)
        exists = inside and path.is_file()
    except (OSError, ValueError) as err:  # a NUL byte, a name too long for the system
        raise UsageError(f"{text!r}: not a usable path ({err})") from None
    if not inside:
        raise UsageError(f"{text}: outside the data folder {base}; only files under it can be used")
    if not exists:
        raise UsageError(f"{text}: no such file in the data folder {base}")
    if path.suffix.lower() not in DATA_SUFFIXES:
        raise UsageError(f"{text}: not a .csv or .parquet file")
    return path


def save_upload(root: Path, filename: str, content: bytes) -> Path:
    """Store an uploaded table under the runs folder, named by its content.

    The user's file name only lends its suffix; the stored name is the
    content's hash, so the same upload is stored once and no name can clash
    or escape.

    Raises
    ------
    UsageError
        For a file that is not ``.csv`` or ``.parquet``, or an empty one.

    """
    suffix = Path(filename).suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise UsageError(f"{filename}: not a .csv or .parquet file")
    if not content:
        raise UsageError(f"{filename}: the file is empty")
    folder = ui_folder(root, "uploads")
    path = folder / f"{hashlib.sha256(content).hexdigest()[:24]}{suffix}"
    if not path.exists():
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_bytes(content)
        os.replace(tmp, path)
    return path


def ui_folder(root: Path, name: str) -> Path:
    """A folder of the UI's own files under the runs folder (made if missing)."""
    folder = root.resolve() / UI_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def process_alive(pid: object) -> bool:
    """Whether process ``pid`` runs on this machine (reaping it if it is our finished child).

    Anything but a positive integer is no process: 0 and negative numbers
    name process groups to ``kill``, never one run.
    """
    if not is_pid(pid):
        return False
    assert isinstance(pid, int)
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


def is_pid(value: object) -> bool:
    """Whether ``value`` can be one process's id (a positive integer)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class RunView:
    """What one run directory says, read once.

    Attributes
    ----------
    run_id : str
        The directory's name.
    path : Path
        The directory.
    config : dict
        ``config.json`` (empty while the run is being set up).
    status : dict
        ``status.json`` (empty while the run is being set up).
    summary : dict | None
        ``summary.json``, once the run has finished.
    created : float
        When the run started (Unix time).

    """

    run_id: str
    path: Path
    config: dict[str, Any]
    status: dict[str, Any]
    summary: dict[str, Any] | None
    created: float

    @property
    def run_dir(self) -> RunDir:  # noqa: D102
        return RunDir(self.path)

    @cached_property
    def state(self) -> str:
        """The recorded state, or ``interrupted`` for a run whose process is gone."""
        state = self.status.get("state", "starting")
        if state == "running" and not self.is_live:
            return "interrupted"
        return state

    @property
    def is_live(self) -> bool:
        """Whether the run's process is alive (``True`` if it cannot be told)."""
        if not self.is_local:
            return self.status.get("state") == "running"
        return process_alive(self.status["pid"])

    @property
    def is_local(self) -> bool:
        """Whether the run's process, as recorded, is on this machine."""
        return is_pid(self.status.get("pid")) and self.status.get("host") == socket.gethostname()

    @property
    def round(self) -> int:  # noqa: D102
        return int(self.status.get("round", 0))

    @property
    def rounds(self) -> int:  # noqa: D102
        return int(self.status.get("rounds", self.config.get("rounds", 0)))

    @property
    def error(self) -> str | None:  # noqa: D102
        return self.status.get("error")

    @property
    def elapsed(self) -> float | None:
        """Seconds since the run started, or its wall time once it has finished."""
        if self.summary and "wall_seconds" in self.summary:
            return float(self.summary["wall_seconds"])
        started = self.status.get("started")
        if not isinstance(started, int | float):
            return None
        if self.state == "running":
            return time.time() - started
        return self.status_mtime - started

    @property
    def status_mtime(self) -> float:  # noqa: D102
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

    def final(self, metric: str, scope: str = "federated") -> float | None:
        """A final metric from ``summary.json`` (``federated``, ``centralized`` or ``gap``)."""
        if not self.summary:
            return None
        value = (self.summary.get(scope) or {}).get(metric)
        return float(value) if isinstance(value, int | float) else None

    def events(self) -> list[dict[str, Any]]:
        """Every event of ``metrics.jsonl`` so far."""
        return list(self.run_dir.read_metrics())

    def client_labels(self) -> dict[str, str]:
        """Client id -> a short name: ``France`` (split by a column), a file name, ``client 3``."""
        labels = {}
        for pid, source in enumerate(self.config.get("client-sources") or []):
            name = client_label(str(source)).partition("=")[2] or client_label(str(source))
            labels[str(pid)] = name if name and not name.startswith("#") else f"client {pid}"
        return labels


def load_run(root: Path, run_id: str) -> RunView:
    """Read the run called ``run_id``.

    Raises
    ------
    UsageError
        For an unsafe name or a run that does not exist.

    """
    path = run_path(root, run_id)
    if not path.is_dir():
        raise UsageError(f"no run called {run_id!r} in {root}")
    run = RunDir(path)
    config = _read(run.read_config) or {}
    status = _read(run.read_status) or {}
    summary = _read(run.read_summary) if status.get("state") == "finished" else None
    started = status.get("started")
    created = float(started) if isinstance(started, int | float) else path.stat().st_mtime
    return RunView(run_id, path, config, status, summary, created)


def list_runs(root: Path) -> list[RunView]:
    """Every run under ``root``, newest first (the UI's own folder is skipped)."""
    if not root.is_dir():
        return []
    runs = []
    for child in root.iterdir():
        if child.is_dir() and _NAME.fullmatch(child.name) and (child / "config.json").exists():
            try:
                runs.append(load_run(root, child.name))
            except (UsageError, OSError):
                continue  # deleted while listing
    return sorted(runs, key=lambda r: r.created, reverse=True)


def delete_run(root: Path, run_id: str) -> None:
    """Delete a run's directory, and the UI's launch files for it.

    Raises
    ------
    UsageError
        For an unsafe name, a missing run, or one still running.

    """
    view = load_run(root, run_id)
    if view.state == "running":
        raise UsageError(f"run {run_id} is still running; stop it first")
    shutil.rmtree(view.path)
    forget_launch(root, run_id)


def launch_files(root: Path, run_id: str) -> tuple[Path, Path, Path]:
    """The UI's record, log and settings file of launching ``run_id``."""
    launches = root.resolve() / UI_DIR / "launches"
    return tuple(launches / f"{run_id}{suffix}" for suffix in LAUNCH_SUFFIXES)  # type: ignore[return-value]


def forget_launch(root: Path, run_id: str) -> None:
    """Remove the UI's files about launching ``run_id``."""
    for path in launch_files(root, run_id):
        path.unlink(missing_ok=True)


def _read(reader: Any) -> dict[str, Any] | None:
    """Read one JSON file of a run; ``None`` if absent or mid-write by another tool."""
    try:
        return reader()
    except (OSError, ValueError):
        return None
