"""A tuning study's folder: its Optuna storage, beside the run directory of each trial.

``fedapp tune`` writes ``<study>/study.db`` (Optuna's SQLite storage) and one
ordinary run directory per trial inside the study folder; readers (``fedapp
runs``, the UI) find the trials as runs named ``<study>/<trial>`` and the
study's trials through :func:`read_trials`. Optuna is imported only to read
a study, never by a reader of runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The Optuna storage of a study folder; its presence is what makes a folder a study.
STUDY_DB = "study.db"
# The one study of a study folder, by Optuna's name.
STUDY_NAME = "fedapp"
# The trial's user attributes the tuner writes and readers rely on.
RUN_ATTR = "run"
CONFIG_ATTR = "config"
ERROR_ATTR = "error"
# The study's user attributes: what is optimised and which way.
METRIC_ATTR = "metric"
TASK_ATTR = "task"


def is_study(path: Path) -> bool:
    """Whether ``path`` is a tuning study's folder (it holds :data:`STUDY_DB`)."""
    return (path / STUDY_DB).is_file()


def storage_url(path: Path) -> str:
    """The Optuna RDB storage of study folder ``path`` (SQLite, absolute)."""
    return f"sqlite:///{(path / STUDY_DB).resolve()}"


@dataclass(frozen=True)
class TrialRow:
    """One trial of a study, as the CLI's table and the UI's show it.

    Attributes
    ----------
    number : int
        Optuna's trial number (0-based, in the order trials started).
    state : str
        ``running``, ``complete``, ``pruned``, ``fail`` or ``waiting`` (Optuna's states).
    value : float | None
        The objective (the clients' own evaluation at the last round) once complete.
    params : dict[str, Any]
        The values the sampler chose, by search-space name.
    run : str | None
        The trial's run directory, by name inside the study folder.
    error : str | None
        Why a failed trial failed.
    intermediate : dict[int, float]
        The objective reported after each round (what the pruner sees).

    """

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    run: str | None = None
    error: str | None = None
    intermediate: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StudyTrials:
    """What a study folder's storage says: the objective and every trial so far.

    Attributes
    ----------
    metric : str
        The optimised score (``auc``, ``accuracy``, ``rmse``).
    maximize : bool
        Whether a larger value is better.
    trials : tuple[TrialRow, ...]
        Every trial, in start order.

    """

    metric: str
    maximize: bool
    trials: tuple[TrialRow, ...]

    @property
    def best(self) -> TrialRow | None:
        """The complete trial with the best value (the earliest of equals)."""
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        if not done:
            return None
        sign = -1.0 if self.maximize else 1.0
        return min(done, key=lambda t: (sign * float(t.value or 0.0), t.number))

    def top(self, count: int) -> list[TrialRow]:
        """The ``count`` best complete trials, best first."""
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        sign = -1.0 if self.maximize else 1.0
        return sorted(done, key=lambda t: (sign * float(t.value or 0.0), t.number))[:count]


def read_trials(path: Path) -> StudyTrials:
    """Read the study of folder ``path``: its objective and trials (while it runs, too).

    Raises
    ------
    FileNotFoundError
        When ``path`` is no study folder.

    """
    if not is_study(path):
        raise FileNotFoundError(f"{path} is not a tuning study (no {STUDY_DB})")
    # Optuna (and SQLAlchemy): only a reader of a study pays for them.
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(storage_url(path), skip_compatibility_check=True)
    try:
        study = optuna.load_study(study_name=STUDY_NAME, storage=storage)
        attrs = study.user_attrs
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        rows = tuple(_row(t) for t in study.get_trials(deepcopy=False))
    finally:
        storage.remove_session()
        storage.engine.dispose()
    return StudyTrials(str(attrs.get(METRIC_ATTR, "value")), maximize, rows)


def _row(trial: Any) -> TrialRow:
    value = trial.value if trial.value is not None and math.isfinite(trial.value) else None
    return TrialRow(
        number=trial.number,
        state=trial.state.name.lower(),
        value=value,
        params=dict(trial.params),
        run=trial.user_attrs.get(RUN_ATTR),
        error=trial.user_attrs.get(ERROR_ATTR),
        intermediate={int(k): float(v) for k, v in trial.intermediate_values.items()},
    )
