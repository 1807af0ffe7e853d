"""Automatic rounds: when a run's monitored score has stopped improving.

With ``rounds = "auto"`` the server watches one score, ``<scope>_<metric>``:
``federated_<metric>`` is the example-weighted mean of the clients' own
held-out scores, reported every round (and so available deployed, where the
server may hold no rows); ``central_<metric>`` is the server's test set,
scored every ``eval-every`` rounds. The run ends once the score has not
improved for ``patience`` rounds, an improvement being a gain of more than
``min-delta`` over the best so far (a tie is none), and keeps the best
round's model. :class:`ConvergenceMonitor` is that bookkeeping, and nothing
else: the run strategy feeds it and moves the round plan.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from fedapp.errors import UsageError
from fedapp.runs import TASK_METRICS, higher_is_better
from fedapp.settings import MONITOR_SCOPES, RunConfig

# Each monitor scope, and the scores it watches: summary.json's key for them
# and the scope of their events (`federated` scores the server computes are
# the central ones: the federated model on the server's test set).
FEDERATED, CENTRAL = MONITOR_SCOPES
SUMMARY_KEYS = {FEDERATED: "federated_evaluation", CENTRAL: "federated"}


def converged_reason(best_round: int) -> str:
    """Why an automatic run ended: the round whose model it keeps."""
    return f"converged at round {best_round}"


def parse(monitor: str) -> tuple[str, str]:
    """The scope and metric of a ``monitor`` setting (``federated_pr_auc``: federated, pr_auc)."""
    scope, _, metric = monitor.partition("_")
    return scope, metric


def monitors(task: str | None, central: bool = True) -> tuple[str, ...]:
    """Every ``monitor`` of ``task``: the clients' scores, then (``central``) the server's.

    ``None`` gives every task's (a form offers them while the task is inferred).
    """
    tasks = [task] if task else list(TASK_METRICS)
    metrics = dict.fromkeys(metric for name in tasks for metric in TASK_METRICS[name])
    scopes = MONITOR_SCOPES if central else (FEDERATED,)
    return tuple(f"{scope}_{metric}" for scope in scopes for metric in metrics)


def check_monitor(monitor: str, task: str, central: bool = True) -> None:
    """Refuse a ``monitor`` that is no score of ``task`` (or that needs a test set not held).

    Parameters
    ----------
    monitor : str
        The setting, ``<scope>_<metric>``.
    task : str
        The run's task, as loading the data settled it.
    central : bool
        Whether the server holds a test set (``central_*`` monitors).

    Raises
    ------
    UsageError
        Naming the monitors the run can watch.

    """
    valid = monitors(task, central)
    if monitor not in valid:
        where = "" if central else " without a server-held test set"
        raise UsageError(
            f"monitor {monitor} is not a score of a {task} run{where}; one of {', '.join(valid)}"
        )


@dataclass
class ConvergenceMonitor:
    """The best value of one score so far, its round, and whether patience has run out.

    Parameters
    ----------
    monitor : str
        The setting it watches, ``<scope>_<metric>``.
    patience : int
        Rounds without an improvement after which the run has converged.
    min_delta : float
        An improvement is a gain of more than this over the best value.
    best : float | None
        The best value so far (``None`` before a finite one).
    best_round : int
        Its round (0 before one).
    latest_round : int
        The last round observed.

    """

    monitor: str
    patience: int
    min_delta: float = 0.0
    best: float | None = None
    best_round: int = 0
    latest_round: int = 0

    @classmethod
    def for_run(cls, cfg: RunConfig) -> ConvergenceMonitor | None:
        """The monitor of an automatic run; ``None`` for a run of fixed rounds."""
        if not cfg.auto_rounds:
            return None
        return cls(cfg.monitor, cfg.patience, cfg.min_delta)

    @property
    def scope(self) -> str:
        """:data:`FEDERATED` (the clients' scores) or :data:`CENTRAL` (the server's)."""
        return parse(self.monitor)[0]

    @property
    def metric(self) -> str:
        """The score's name in the evaluation events (``loss``, ``auc``)."""
        return parse(self.monitor)[1]

    @property
    def rounds_since_best(self) -> int:
        """Rounds observed since the best one (all of them before a finite value)."""
        return self.latest_round - self.best_round

    @property
    def converged(self) -> bool:
        """Whether the score has not improved for ``patience`` rounds since its best."""
        return self.best_round > 0 and self.rounds_since_best >= self.patience

    def improves(self, value: float) -> bool:
        """Whether ``value`` beats the best by more than ``min_delta`` (NaN never does)."""
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        gain = value - self.best if higher_is_better(self.metric) else self.best - value
        return gain > self.min_delta

    def update(self, server_round: int, metrics: Mapping[str, Any]) -> bool:
        """Observe round ``server_round``'s scores; say whether it is the new best.

        A round without the score (or with a NaN) counts as one without improvement.
        """
        self.latest_round = max(self.latest_round, server_round)
        value = metrics.get(self.metric)
        if not isinstance(value, int | float) or not self.improves(float(value)):
            return False
        self.best, self.best_round = float(value), server_round
        return True

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` says of the automatic rounds."""
        return {
            "monitor": self.monitor,
            "best_round": self.best_round,
            "best": self.best,
            "rounds_run": self.latest_round,
            "converged": self.converged,
            "patience": self.patience,
            "min_delta": self.min_delta,
        }

    def to_dict(self) -> dict[str, Any]:
        """The monitor's whole state, as JSON: :meth:`from_dict` takes it back (a checkpoint)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> ConvergenceMonitor:
        """The monitor :meth:`to_dict` wrote."""
        return cls(**{key: state[key] for key in cls.__dataclass_fields__ if key in state})
