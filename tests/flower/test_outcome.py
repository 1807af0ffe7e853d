"""The end of a run: its outcome, summary.json and the state finished."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedapp.flower.outcome import RunOutcome, client_rows, finish_run, stop_run, summary
from fedapp.runs import Recorder, RunDir

AUC = {"auc": 0.8, "loss": 0.4}


def _recorder(tmp_path: Path, rounds: int = 3) -> Recorder:
    run_dir = RunDir(tmp_path)
    run_dir.mark_started(rounds)
    return Recorder(run_dir, rounds)


def test_finish_writes_the_summary_then_marks_the_run_finished(tmp_path: Path) -> None:
    # Prepare
    recorder = _recorder(tmp_path)
    outcome = RunOutcome("fedavg", rounds=3, rounds_run=3, federated=AUC)

    # Execute
    written = finish_run(recorder, outcome, {"centralized": {"auc": 0.9}})

    # Assert
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved == written
    assert list(saved) == ["federated", "federated_evaluation", "wall_seconds", "rounds",
                           "strategy", "failed_client_rounds", "centralized"]  # fmt: skip
    assert (saved["rounds"], saved["strategy"], saved["federated"]) == (3, "fedavg", AUC)
    status = json.loads((tmp_path / "status.json").read_text())
    assert (status["state"], status["round"], status["rounds"]) == ("finished", 3, 3)
    assert "reason" not in status


def test_a_run_ended_early_by_its_budget_says_why(tmp_path: Path) -> None:
    # Prepare: 2 of 3 rounds, a DP run
    recorder = _recorder(tmp_path)
    outcome = RunOutcome("fedavg", rounds=2, rounds_run=2, stop_reason="privacy budget reached",
                         privacy={"mode": "central", "epsilon": 1.5})  # fmt: skip

    # Execute
    written = finish_run(recorder, outcome)

    # Assert
    assert written["reason"] == "privacy budget reached" and written["rounds"] == 2
    assert written["privacy"] == {"mode": "central", "epsilon": 1.5}
    status = json.loads((tmp_path / "status.json").read_text())
    assert (status["state"], status["round"], status["rounds"]) == ("finished", 2, 3)
    assert status["reason"] == "privacy budget reached"


def test_a_run_short_of_its_last_round_is_not_finished(tmp_path: Path) -> None:
    # Prepare
    recorder = _recorder(tmp_path)
    outcome = RunOutcome("fedavg", rounds=3, rounds_run=1)

    # Execute / Assert
    with pytest.raises(RuntimeError, match=r"ended before its last round \(round 1 of 3\)"):
        finish_run(recorder, outcome)
    assert not (tmp_path / "summary.json").exists()
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "running"


def test_the_summary_has_no_privacy_or_reason_of_a_plain_run() -> None:
    # Execute
    out = summary(RunOutcome("krum", rounds=4, rounds_run=4), wall_seconds=1.5)

    # Assert
    assert out == {"federated": None, "federated_evaluation": None, "wall_seconds": 1.5,
                   "rounds": 4, "strategy": "krum", "failed_client_rounds": 0}  # fmt: skip


def test_a_stopped_run_with_a_kept_model_gets_a_partial_summary_first(tmp_path: Path) -> None:
    # Prepare: 5 rounds asked, stopped after round 2
    recorder = _recorder(tmp_path, rounds=5)
    kept = RunOutcome("fedavg", rounds=2, rounds_run=2, federated=AUC)

    # Execute
    stop_run(recorder, kept, "stopped (SIGTERM)")

    # Assert
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["partial"] is True and saved["round"] == 2 and saved["federated"] == AUC
    status = json.loads((tmp_path / "status.json").read_text())
    assert (status["state"], status["error"]) == ("stopped", "stopped (SIGTERM)")


def test_a_run_stopped_before_a_round_has_no_summary(tmp_path: Path) -> None:
    # Execute
    stop_run(_recorder(tmp_path), None, "stopped (SIGINT)")

    # Assert
    assert not (tmp_path / "summary.json").exists()
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "stopped"


def test_the_summary_names_the_validation_rows_a_client_evaluated_on() -> None:
    # Execute: a run holding validation rows out counts those when its clients evaluate
    rows = client_rows({0: 64, 1: 96}, {0: 16, 1: 24}, "validation")

    # Assert
    assert rows == {"0": {"train": 64, "validation": 16}, "1": {"train": 96, "validation": 24}}


def test_the_summary_says_each_clients_rows_where_known() -> None:
    # Prepare: client 2 never evaluated (not sampled), so its test rows are unknown
    rows = client_rows({0: 80, 1: 120, 2: 40}, {1: 30, 0: 20})

    # Execute
    out = summary(RunOutcome("fedavg", rounds=1, rounds_run=1, clients=rows), wall_seconds=1.0)

    # Assert
    assert out["clients"] == {"0": {"train": 80, "test": 20}, "1": {"train": 120, "test": 30},
                              "2": {"train": 40}}  # fmt: skip
    assert list(out)[:6] == ["federated", "federated_evaluation", "wall_seconds", "rounds",
                             "strategy", "failed_client_rounds"]  # fmt: skip
