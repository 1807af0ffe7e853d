"""The runs folder as the UI sees it: safe names and paths, uploads, deleting.

A run is read through :class:`fedapp.runs.RunView`, the read model the CLI
shares; this module adds what only the UI needs. Every name or path a user
types goes through :func:`run_path` or :func:`data_path`, which refuse
anything that would leave its folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

from fedapp import runs
from fedapp.errors import UsageError
from fedapp.runs import RunState, RunView
from fedapp.runs.study import STUDY_DB, is_study

# The UI's own files (uploads, launch records and logs) live in the runs
# folder, under a name no run can take (run names cannot start with a dot).
UI_DIR = ".fedapp-ui"
DATA_SUFFIXES = (".csv", ".parquet")
LAUNCH_SUFFIXES = (".json", ".log", ".settings.json")

# An uploaded file keeps its name, in these characters besides letters and digits.
_UPLOAD_CHARS = frozenset(" ._-()")
MAX_UPLOAD_NAME = 100

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def folders() -> tuple[Path, Path]:
    """The runs folder and the data folder the UI was started with (``fedapp ui``).

    Without ``--data-dir`` the data folder is the runs folder.
    """
    runs = Path(os.environ.get("FEDAPP_UI_RUNS_DIR", "runs")).resolve()
    return runs, Path(os.environ.get("FEDAPP_UI_DATA_DIR", str(runs))).resolve()


def data_dir_given() -> bool:
    """Whether ``fedapp ui`` was given a ``--data-dir`` (else it is the runs folder)."""
    return "FEDAPP_UI_DATA_DIR" in os.environ


def run_path(root: Path, name: str) -> Path:
    """The directory of the run called ``name``: a direct child of ``root``.

    A trial of a tuning study is called ``<study>/<trial>`` and is a child of
    the study's folder (one holding ``study.db``, :mod:`fedapp.runs.study`).

    Raises
    ------
    UsageError
        For an empty name, a path (``a/b``, ``../x``, ``/etc``) or a name
        with characters other than letters, digits, ``.``, ``_`` and ``-``.

    """
    study, slash, trial = name.partition("/")
    if slash and _safe_name(study) and _safe_name(trial) and is_study(root.resolve() / study):
        return root.resolve() / study / trial  # a trial of a tuning study in the runs folder
    if not _safe_name(name):
        raise UsageError(
            f"run name {name!r} is not allowed: use up to 100 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (no paths)"
        )
    path = root.resolve() / name
    if path.parent != root.resolve():  # belt and braces: a name is never a path
        raise UsageError(f"run name {name!r} leaves the runs folder")
    return path


def data_path(root: Path, typed: str, given: bool = True) -> Path:
    """Resolve a data file typed by the user inside the data folder ``root``.

    Relative paths are taken from ``root``; absolute ones must lie inside it.
    Symbolic links are followed before the check, so none can lead outside.

    Parameters
    ----------
    root : Path
        The data folder.
    typed : str
        The path as typed.
    given : bool
        Whether ``root`` was chosen with ``--data-dir``; if not (it is the
        runs folder), a path outside it is answered with the option to pass.

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
    if not inside and not given:
        folder = path if path.is_dir() else path.parent
        raise UsageError(
            f"{text}: outside the data folder, which is the runs folder {base} because "
            f"`fedapp ui` was started without --data-dir; to use files from {folder}, "
            f"restart it with `fedapp ui --data-dir {folder}`, or upload the file"
        )
    if not inside:
        raise UsageError(
            f"{text}: outside the data folder {base} (--data-dir); only files under it can be used"
        )
    if not exists:
        raise UsageError(f"{text}: no such file in the data folder {base}")
    if path.suffix.lower() not in DATA_SUFFIXES:
        raise UsageError(f"{text}: not a .csv or .parquet file")
    return path


def save_upload(root: Path, filename: str, content: bytes) -> Path:
    """Store an uploaded table under the runs folder: ``uploads/<content hash>/<its name>``.

    The folder is named by the content's hash, so the same upload is stored
    once and two files of the same name never clash; the file keeps the
    user's name (made safe by :func:`upload_name`), so that ``config.json``,
    the run's labels and its messages name it as the user knows it.

    Raises
    ------
    UsageError
        For a file that is not ``.csv`` or ``.parquet``, or an empty one.

    """
    name = upload_name(filename)
    if Path(name).suffix.lower() not in DATA_SUFFIXES:
        raise UsageError(f"{filename}: not a .csv or .parquet file")
    if not content:
        raise UsageError(f"{filename}: the file is empty")
    folder = ui_folder(root, "uploads") / hashlib.sha256(content).hexdigest()[:24]
    path = folder / name
    if path.parent != folder:  # belt and braces: the name is never a path
        raise UsageError(f"{filename}: not a usable file name")
    if not path.exists():
        folder.mkdir(exist_ok=True)
        tmp = folder / f".{name}.part"
        tmp.write_bytes(content)
        os.replace(tmp, path)
    return path


def upload_name(filename: str) -> str:
    """An uploaded file's name as stored: its last path part, in safe characters.

    Letters (of any script), digits, spaces and ``._-()`` are kept, anything
    else becomes ``_``; leading dots go (no hidden files) and the name is cut
    to :data:`MAX_UPLOAD_NAME` characters, keeping its suffix.
    """
    last = filename.replace("\\", "/").rsplit("/", 1)[-1]
    safe = "".join(c if c.isalnum() or c in _UPLOAD_CHARS else "_" for c in last)
    dot = safe.rfind(".")
    stem, suffix = (safe[:dot], safe[dot:]) if dot >= 0 else (safe, "")
    stem = stem.lstrip(".").strip() or "upload"  # ".csv", "..csv": nothing to call it
    return stem[: MAX_UPLOAD_NAME - len(suffix)] + suffix


def reusable_file(root: Path, data_root: Path, recorded: str) -> Path:
    """A data file a run's ``config.json`` names, if it may be used again here.

    It must lie in the data folder ``data_root`` or among the uploads of the
    runs folder ``root``, as a file picked or uploaded now would.

    Raises
    ------
    UsageError
        For a file elsewhere, one that is gone, or not a CSV/Parquet file.

    """
    try:
        path = Path(recorded).resolve()
    except (OSError, ValueError) as err:
        raise UsageError(f"{recorded!r}: not a usable path ({err})") from None
    uploads = root.resolve() / UI_DIR / "uploads"
    if not any(path.is_relative_to(folder) for folder in (data_root.resolve(), uploads)):
        raise UsageError(
            f"{path}: outside the data folder {data_root.resolve()} and the UI's uploads; "
            f"upload it again, or restart the UI with `fedapp ui --data-dir {path.parent}`"
        )
    if not path.is_file():
        raise UsageError(f"{path}: the run's data file no longer exists; upload it again")
    if path.suffix.lower() not in DATA_SUFFIXES:
        raise UsageError(f"{path}: not a .csv or .parquet file")
    return path


def ui_folder(root: Path, name: str) -> Path:
    """A folder of the UI's own files under the runs folder (made if missing)."""
    folder = root.resolve() / UI_DIR / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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
    return RunView.read(path, run_id)


def list_runs(root: Path) -> list[RunView]:
    """Every run under ``root`` the UI can open (its name is safe), newest first."""
    return runs.list_runs(root.resolve(), accept=_safe_run_name)


def studies(root: Path) -> list[Path]:
    """The tuning studies' folders in ``root`` whose names are safe, newest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.resolve().iterdir() if _safe_name(p.name) and is_study(p)]
    return sorted(found, key=lambda p: (p / STUDY_DB).stat().st_mtime, reverse=True)


def study_path(root: Path, name: str) -> Path:
    """The folder of the study called ``name``, a direct child of ``root`` (maybe not made yet).

    Raises
    ------
    UsageError
        For a name :func:`run_path` would refuse, or one a run has taken.

    """
    path = run_path(root, name)
    if (path / "config.json").exists():
        raise UsageError(f"{name!r} is a run, not a study; choose another name")
    return path


def delete_run(root: Path, run_id: str) -> None:
    """Delete a run's directory, and the UI's launch files for it.

    Raises
    ------
    UsageError
        For an unsafe name, a missing run, or one still running.

    """
    view = load_run(root, run_id)
    if view.state is RunState.RUNNING:
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


def _safe_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name)) and ".." not in name


def _safe_run_name(name: str) -> bool:
    """A run's name, or a study's trial's ``<study>/<trial>``, of safe names."""
    return all(_safe_name(part) for part in name.split("/", 1))
