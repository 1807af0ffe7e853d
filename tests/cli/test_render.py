"""The run summary ``fedapp simulate`` prints, from the run's RunView."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fedapp.cli.render import print_summary
from fedapp.runs import RunDir, RunState, RunView

METRICS = {"auc": 0.75, "pr_auc": 0.4, "accuracy": 0.8, "f1": 0.2, "precision": 0.5,
           "recall": 0.1, "loss": 0.45}  # fmt: skip
SUMMARY: dict[str, Any] = {
    "strategy": "fedavg",
    "rounds": 2,
    "federated": METRICS,
    "centralized": {**METRICS, "auc": 0.8},
    "gap": {name: 0.0 for name in METRICS} | {"auc": -0.05},
    "local_only": {"0": {"auc": 0.7}, "1": {"auc": 0.9}},
    "privacy": {"mode": "central", "epsilon": 2.5, "delta": 1e-5},
    "reason": "privacy budget spent",
    "wall_seconds": 17.54,
}


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A console wide enough that no line of the summary wraps."""
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    """A finished run of two institutions."""
    run = RunDir.create(tmp_path / "r", tmp_path, "fedavg")
    sources = ["demo data (institution=inst-0)", "demo data (institution=inst-1)"]
    run.write_config({"rounds": 3, "strategy": "fedavg", "client-sources": sources})
    run.write_summary(SUMMARY)
    run.set_status(RunState.FINISHED, 2, 3)
    return run


def test_print_summary_of_a_view(run: RunDir, capsys: pytest.CaptureFixture[str]) -> None:
    # Execute
    print_summary(RunView.read(run.path))

    # Assert
    out = capsys.readouterr().out
    assert "fedavg, 2 rounds, binary (global test set)" in out
    assert "0 institution=inst-0" in out and "1 institution=inst-1" in out
    assert "federated beats local-only for 1 of 2 institutions" in out
    assert "+0.0500" in out and "-0.1500" in out  # each institution's gain
    assert "ε = 2.5000 at δ = 1e-05; stopped after round 2: privacy budget spent" in out
    assert f"wall time 17.5 s; run directory: {run.path}" in out


def test_print_summary_of_a_path_and_summary_prints_the_same(
    run: RunDir, capsys: pytest.CaptureFixture[str]
) -> None:
    # Prepare
    print_summary(RunView.read(run.path))
    expected = capsys.readouterr().out

    # Execute
    print_summary(run.path, SUMMARY)

    # Assert
    assert capsys.readouterr().out == expected


def test_print_summary_refuses_a_run_without_a_summary(tmp_path: Path) -> None:
    # Prepare
    run = RunDir.create(tmp_path / "r", tmp_path, "fedavg")
    run.write_config({"rounds": 3})
    run.set_status(RunState.FAILED, 1, 3, error="boom")

    # Execute / Assert
    with pytest.raises(ValueError, match="has no summary: it is failed"):
        print_summary(run.path)


def test_a_warning_prints_brackets_as_they_are(capsys: pytest.CaptureFixture[str]) -> None:
    # Prepare: a data warning naming a column written like rich markup
    from fedapp.cli.output import warn

    # Execute
    warn("column [bold] holds one value")

    # Assert
    assert "warning: column [bold] holds one value" in capsys.readouterr().err


def test_print_summary_of_an_automatic_run_names_the_round_of_its_model(
    run: RunDir, capsys: pytest.CaptureFixture[str]
) -> None:
    # Prepare: converged at round 1 of at most 10, after 2 rounds (patience 1)
    auto = {"monitor": "federated_loss", "best_round": 1, "best": 0.45, "rounds_run": 2,
            "converged": True, "patience": 1, "min_delta": 0.0, "max_rounds": 10}  # fmt: skip
    summary = {**SUMMARY, "reason": "converged at round 1", "auto_rounds": auto}
    del summary["privacy"]

    # Execute
    print_summary(run.path, summary)

    # Assert
    out = capsys.readouterr().out
    assert "fedavg, 2 rounds, model of round 1, binary" in out  # the table's title
    assert (
        "rounds auto: model.keras is the model of round 1, the best federated_loss (0.4500); "
        "converged: no improvement in the round after it, 2 rounds run of at most 10"
    ) in out
