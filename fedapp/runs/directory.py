"""The run directory: the contract between the engine and its readers.

``runs/<run-id>/`` holds ``config.json``, ``status.json`` (rewritten
atomically), ``metrics.jsonl`` (appended per event), ``summary.json``,
``preprocessing.json`` (the federated preprocessing, aggregates only),
``model.keras``, ``curves.json`` (ROC, precision-recall and confusion
matrix of the final model on the global test set) and ``model_card.md``. Readers such as the UI
and the benchmarks use this module and never the engine.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedapp.errors import UsageError
from fedapp.runs.events import Event
from fedapp.runs.metrics import TASK_METRICS
from fedapp.runs.state import RunState

# The states status.json may hold, for readers that check one.
STATES = tuple(s.value for s in RunState if s.recorded)

# The binary scores, in display order (see :mod:`fedapp.runs.metrics` for every task's).
METRIC_NAMES = TASK_METRICS["binary"]


# What `status.json` says about the process running the run.
_PROCESS_FIELDS = ("pid", "host", "started")

# Space a running run keeps for its last status.json: released and reused
# when the disk fills, so the run can still say how it ended.
_RESERVE_BYTES = 64 * 1024


def new_run_id(name: str) -> str:
    """A fresh run directory name: ``<date>-<time>-<name>-<4 hex digits>``."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{secrets.token_hex(2)}"


def client_label(source: str) -> str:
    """A client's short name from ``config.json``'s ``client-sources`` entry.

    ``data.csv (Geography=France)`` gives ``Geography=France``, ``data.csv (#3)``
    gives ``#3`` and a file path gives the file's name.
    """
    if source.endswith(")") and " (" in source:
        return source[source.rindex(" (") + 2 : -1]
    return Path(source).name


def json_safe(value: Any) -> Any:
    """Make metrics JSON-safe: NaN and infinities become ``null``."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):  # NumPy scalars
        return json_safe(value.item())
    return value


@functools.cache
def _file_mode() -> int:
    """The mode a new file gets from this process's umask (``0o644`` under the usual ``022``)."""
    try:  # Linux says it without changing it
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half.

    The file gets the mode any new file of this process gets (from its umask),
    as ``metrics.jsonl`` does: a run's files are all readable alike.
    """
    write_text_atomic(path, json.dumps(json_safe(data), indent=2))


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) so that readers see the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        # mkstemp makes the temporary file 0600, whatever the umask says.
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_durably(path: Path, data: bytes) -> None:
    """Write ``data`` whole or not at all, and durably: a crash right after keeps it.

    For what a resumed run depends on (checkpoints, a client's state): the
    temporary file is fsynced before the rename, and the folder after it.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # not every file system opens folders
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


@dataclass(frozen=True)
class RunDir:
    """One run's directory."""

    path: Path

    @property
    def run_id(self) -> str:
        """The directory's name."""
        return self.path.name

    @property
    def config_file(self) -> Path:  # noqa: D102
        return self.path / "config.json"

    @property
    def status_file(self) -> Path:  # noqa: D102
        return self.path / "status.json"

    @property
    def metrics_file(self) -> Path:  # noqa: D102
        return self.path / "metrics.jsonl"

    @property
    def summary_file(self) -> Path:  # noqa: D102
        return self.path / "summary.json"

    @property
    def model_file(self) -> Path:  # noqa: D102
        return self.path / "model.keras"

    @property
    def preprocessing_file(self) -> Path:  # noqa: D102
        return self.path / "preprocessing.json"

    @property
    def curves_file(self) -> Path:  # noqa: D102
        return self.path / "curves.json"

    @property
    def checkpoints_dir(self) -> Path:
        """``checkpoints/``: the state after recent rounds (:mod:`fedapp.runs.checkpoints`)."""
        return self.path / "checkpoints"

    @property
    def model_card_file(self) -> Path:
        """``model_card.md``: what the model is, from what, how good (a finished run's)."""
        return self.path / "model_card.md"

    @property
    def reserve_file(self) -> Path:
        """The space a running run keeps for its final ``status.json``."""
        return self.path / ".status-reserve"

    @classmethod
    def create(cls, path: Path | None, root: Path, name: str) -> RunDir:
        """Make a new run directory; never reuse one that holds a run.

        Parameters
        ----------
        path : Path | None
            The directory the user asked for, or ``None`` for a fresh one
            under ``root`` named after the time and ``name``.
        root : Path
            Parent of generated run directories.
        name : str
            Goes into a generated directory's name (e.g. the strategy).

        """
        if path is None:
            path = root / new_run_id(name)
        if path.exists() and not path.is_dir():
            raise UsageError(
                f"run directory {path} is a file, not a directory; choose another --run-dir"
            )
        taken = UsageError(
            f"run directory {path} already exists and is not empty; choose another --run-dir"
        )
        if path.exists() and any(path.iterdir()):
            raise taken
        try:
            path.mkdir(parents=True, exist_ok=True)
            # The claim: of processes creating the same directory at once,
            # exactly one creates its config.json (O_EXCL); the others lose.
            os.close(os.open(path / "config.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            raise taken from None
        except OSError as err:
            raise UsageError(f"cannot create run directory {path}: {err.strerror}") from err
        return cls(path)

    def write_config(self, config: dict[str, Any]) -> None:  # noqa: D102
        write_json_atomic(self.config_file, config)

    def set_status(
        self,
        state: RunState | str,
        round_: int,
        rounds: int,
        error: str | None = None,
        **extra: Any,
    ) -> None:
        """Rewrite ``status.json`` atomically.

        The process fields (``pid``, ``host``, ``started``) written by
        :meth:`mark_started` are kept, so that a reader can tell a live run
        from one whose process died, and stop it.

        Raises
        ------
        ValueError
            For a state ``status.json`` does not record (``interrupted`` and
            the other inferred ones, or no state at all).

        """
        if state not in STATES:  # a check, not an assert: it must hold under `python -O`
            raise ValueError(f"status.json records {', '.join(STATES)}, not {str(state)!r}")
        state = RunState(state)
        kept: dict[str, Any] = {}
        if self.status_file.exists():
            try:
                previous = self.read_status()
                kept = {k: previous[k] for k in _PROCESS_FIELDS if k in previous}
            except (OSError, ValueError):
                pass
        status = {"state": str(state), "round": round_, "rounds": rounds, "error": error}
        try:
            write_json_atomic(self.status_file, {**status, **kept, **extra})
        except OSError as err:
            if err.errno != errno.ENOSPC or not self.reserve_file.exists():
                raise
            # The disk is full: the reserved space is what this write is kept for.
            self.reserve_file.unlink()
            write_json_atomic(self.status_file, {**status, **kept, **extra})
        if state is not RunState.RUNNING:
            self.reserve_file.unlink(missing_ok=True)

    def mark_started(self, rounds: int) -> None:
        """Record the run as ``running`` in this process, from now.

        It also reserves the space of the run's last ``status.json``
        (:attr:`reserve_file`), so that a run the full disk ends still records
        how it ended.
        """
        self.set_status(
            RunState.RUNNING,
            0,
            rounds,
            pid=os.getpid(),
            host=socket.gethostname(),
            started=time.time(),
        )
        try:
            with self.reserve_file.open("wb") as handle:
                handle.write(bytes(_RESERVE_BYTES))
        except OSError:
            self.reserve_file.unlink(missing_ok=True)  # the disk is full already

    def append_metrics(self, event: dict[str, Any]) -> None:
        """Append one event as a line of ``metrics.jsonl``."""
        line = json.dumps(json_safe(event), separators=(",", ":"))
        with self.metrics_file.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def write_summary(self, summary: dict[str, Any]) -> None:  # noqa: D102
        write_json_atomic(self.summary_file, summary)

    def read_config(self) -> dict[str, Any]:  # noqa: D102
        return json.loads(self.config_file.read_text(encoding="utf-8"))

    def read_status(self) -> dict[str, Any]:  # noqa: D102
        return json.loads(self.status_file.read_text(encoding="utf-8"))

    def read_summary(self) -> dict[str, Any]:  # noqa: D102
        return json.loads(self.summary_file.read_text(encoding="utf-8"))

    def write_curves(self, curves: dict[str, Any]) -> None:  # noqa: D102
        write_json_atomic(self.curves_file, curves)

    def read_curves(self) -> dict[str, Any]:  # noqa: D102
        return json.loads(self.curves_file.read_text(encoding="utf-8"))

    def read_metrics(self) -> Iterator[dict[str, Any]]:
        """Yield the events of ``metrics.jsonl`` in order (a torn last line is skipped)."""
        if not self.metrics_file.exists():
            return
        with self.metrics_file.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue

    def read_events(self) -> Iterator[Event]:
        """Yield the typed events of ``metrics.jsonl`` in order.

        A torn last line is skipped (as :meth:`read_metrics` does), and so is a
        line that is not an event, so that one odd line never hides a run.
        """
        for line in self.read_metrics():
            try:
                yield Event.from_dict(line)
            except ValueError:
                continue
