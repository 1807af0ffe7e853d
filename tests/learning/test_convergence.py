"""Automatic rounds' monitor: improvement beyond min-delta, patience, which way is better."""

from __future__ import annotations

import json
import math

import pytest

from fedapp.errors import UsageError
from fedapp.learning import convergence
from fedapp.learning.convergence import ConvergenceMonitor
from fedapp.settings import RunConfig


def _feed(monitor: ConvergenceMonitor, values: list[float | None]) -> list[bool]:
    """Observe rounds 1, 2, ... with ``values`` of the monitored metric (``None``: absent)."""
    metric = monitor.metric
    return [
        monitor.update(r, {} if v is None else {metric: v, "other": 0.0})
        for r, v in enumerate(values, start=1)
    ]


def test_a_lower_is_better_score_improves_when_it_falls() -> None:
    # Prepare
    monitor = ConvergenceMonitor("federated_loss", patience=2)

    # Execute
    improved = _feed(monitor, [0.6, 0.5, 0.55, 0.4])

    # Assert
    assert improved == [True, True, False, True]
    assert (monitor.best, monitor.best_round, monitor.rounds_since_best) == (0.4, 4, 0)
    assert not monitor.converged


def test_a_higher_is_better_score_improves_when_it_rises() -> None:
    # Prepare
    monitor = ConvergenceMonitor("central_auc", patience=3)

    # Execute
    improved = _feed(monitor, [0.6, 0.7, 0.65, 0.71])

    # Assert
    assert improved == [True, True, False, True]
    assert (monitor.scope, monitor.metric) == ("central", "auc")
    assert (monitor.best, monitor.best_round) == (0.71, 4)


def test_the_run_converges_after_patience_rounds_without_improvement() -> None:
    # Prepare
    monitor = ConvergenceMonitor("federated_loss", patience=2)

    # Execute: best at round 2, then two rounds no better
    _feed(monitor, [0.5, 0.4, 0.45])
    before = monitor.converged
    improved = monitor.update(4, {"loss": 0.41})

    # Assert
    assert not before and not improved
    assert monitor.converged and (monitor.best_round, monitor.latest_round) == (2, 4)


def test_a_tie_is_no_improvement() -> None:
    # Prepare
    monitor = ConvergenceMonitor("federated_accuracy", patience=2)

    # Execute
    improved = _feed(monitor, [0.8, 0.8, 0.8])

    # Assert
    assert improved == [True, False, False]
    assert monitor.best_round == 1 and monitor.converged


@pytest.mark.parametrize(
    ("metric", "values", "expected"),
    [
        ("federated_loss", [0.5, 0.45, 0.44, 0.3], [True, False, False, True]),
        ("federated_auc", [0.7, 0.75, 0.76, 0.9], [True, False, False, True]),
    ],
    ids=["lower-is-better", "higher-is-better"],
)
def test_an_improvement_must_beat_the_best_by_more_than_min_delta(
    metric: str, values: list[float], expected: list[bool]
) -> None:
    # Prepare: gains of exactly 0.05 (and 0.06 over the best) do not count, 0.2 does
    monitor = ConvergenceMonitor(metric, patience=5, min_delta=0.1)

    # Execute
    improved = _feed(monitor, values)

    # Assert
    assert improved == expected
    assert monitor.best == values[-1] and monitor.best_round == 4


def test_a_round_without_the_score_or_with_nan_counts_as_no_improvement() -> None:
    # Prepare
    monitor = ConvergenceMonitor("federated_loss", patience=2)

    # Execute
    improved = _feed(monitor, [0.5, None, math.nan])

    # Assert
    assert improved == [True, False, False]
    assert monitor.converged and monitor.best == 0.5


def test_without_any_finite_score_the_run_never_converges() -> None:
    # Prepare
    monitor = ConvergenceMonitor("federated_loss", patience=1)

    # Execute
    _feed(monitor, [math.nan, None, math.nan])

    # Assert: no best round to keep, so no convergence to claim
    assert (monitor.best, monitor.best_round, monitor.rounds_since_best) == (None, 0, 3)
    assert not monitor.converged


def test_the_state_round_trips_through_json() -> None:
    # Prepare
    monitor = ConvergenceMonitor("central_rmse", patience=3, min_delta=0.01)
    _feed(monitor, [2.0, 1.5, 1.6])

    # Execute
    restored = ConvergenceMonitor.from_dict(json.loads(json.dumps(monitor.to_dict())))
    restored.update(4, {"rmse": 1.7})
    monitor.update(4, {"rmse": 1.7})

    # Assert
    assert restored == monitor
    assert restored.converged is False and restored.rounds_since_best == 2


def test_the_summary_says_the_best_round_and_whether_it_converged() -> None:
    # Prepare
    monitor = ConvergenceMonitor("federated_loss", patience=1)
    _feed(monitor, [0.5, 0.6])

    # Execute
    summary = monitor.summary()

    # Assert
    assert summary == {
        "monitor": "federated_loss", "best_round": 1, "best": 0.5, "rounds_run": 2,
        "converged": True, "patience": 1, "min_delta": 0.0,
    }  # fmt: skip


def test_only_an_automatic_run_has_a_monitor() -> None:
    # Prepare
    auto = RunConfig(
        rounds="auto", max_rounds=20, patience=4, min_delta=0.01, monitor="central_auc"
    )

    # Execute
    monitor = ConvergenceMonitor.for_run(auto)

    # Assert
    assert monitor == ConvergenceMonitor("central_auc", 4, 0.01)
    assert ConvergenceMonitor.for_run(RunConfig(rounds=20)) is None


def test_the_monitors_of_a_task_are_its_scores_in_both_scopes() -> None:
    # Execute
    regression = convergence.monitors("regression")
    deployed = convergence.monitors("regression", central=False)
    every = convergence.monitors(None)

    # Assert
    assert regression == (
        "federated_rmse", "federated_mae", "federated_r2", "federated_loss",
        "central_rmse", "central_mae", "central_r2", "central_loss",
    )  # fmt: skip
    assert deployed == regression[:4]
    assert {"federated_auc", "federated_macro_f1", "central_rmse"} <= set(every)
    assert len(every) == len(set(every))


@pytest.mark.parametrize(
    ("monitor", "task", "central", "message"),
    [
        ("federated_auc", "regression", True, "monitor federated_auc is not a score of a "
         "regression run; one of federated_rmse, federated_mae, federated_r2, federated_loss, "
         "central_rmse"),
        ("central_loss", "binary", False, "monitor central_loss is not a score of a binary run "
         "without a server-held test set; one of federated_auc"),
        ("federated_lossy", "binary", True, "monitor federated_lossy is not a score"),
    ],
    ids=["other-task", "no-test-set", "unknown-metric"],
)  # fmt: skip
def test_a_monitor_the_task_does_not_score_is_refused(
    monitor: str, task: str, central: bool, message: str
) -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        convergence.check_monitor(monitor, task, central)

    # Assert
    assert str(caught.value).startswith(message)


def test_a_monitor_of_the_task_is_accepted() -> None:
    # Execute / Assert: no error
    convergence.check_monitor("central_macro_f1", "multiclass")
    convergence.check_monitor("federated_pr_auc", "binary", central=False)
