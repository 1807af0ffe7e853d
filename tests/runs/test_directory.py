"""The run directory: created once, its files written atomically and read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedapp.errors import UsageError
from fedapp.runs import Event, RunDir, RunState, Scope, Stage


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    """A fresh, empty run directory."""
    return RunDir.create(tmp_path / "r", tmp_path, "x")


def test_create_refuses_to_reuse_a_run(tmp_path: Path) -> None:
    # Prepare
    run = RunDir.create(tmp_path / "exp1", tmp_path, "fedavg")
    run.write_config({"rounds": 1})

    # Execute / Assert
    with pytest.raises(UsageError, match="already exists and is not empty"):
        RunDir.create(tmp_path / "exp1", tmp_path, "fedavg")


def test_create_generates_a_name_under_the_root(tmp_path: Path) -> None:
    # Execute
    generated = RunDir.create(None, tmp_path / "runs", "fedprox")

    # Assert
    assert generated.path.parent == tmp_path / "runs" and "fedprox" in generated.run_id


def test_set_status_writes_the_status_and_leaves_no_temporary(run: RunDir) -> None:
    # Execute
    run.set_status("running", 2, 5)

    # Assert
    assert run.read_status() == {"state": "running", "round": 2, "rounds": 5, "error": None}
    assert [p.name for p in run.path.iterdir() if p.name.startswith(".")] == []


def test_set_status_records_the_error(run: RunDir) -> None:
    # Execute
    run.set_status(RunState.FAILED, 2, 5, error="boom")

    # Assert
    assert run.read_status()["error"] == "boom"
    assert run.read_status()["state"] == "failed"


def test_set_status_keeps_the_process_fields(run: RunDir) -> None:
    # Prepare
    run.mark_started(3)
    started = run.read_status()

    # Execute
    run.set_status(RunState.STOPPED, 1, 3)

    # Assert
    status = run.read_status()
    assert {k: status[k] for k in ("pid", "host", "started")} == {
        k: started[k] for k in ("pid", "host", "started")
    }


@pytest.mark.parametrize(
    "state", ["done", RunState.INTERRUPTED, RunState.STARTING, RunState.MISSING, ""]
)
def test_set_status_refuses_a_state_that_is_not_recorded(run: RunDir, state: str) -> None:
    # Execute
    with pytest.raises(ValueError) as caught:
        run.set_status(state, 0, 1)

    # Assert
    assert "status.json records running, finished, failed, stopped" in str(caught.value)
    assert not run.status_file.exists()


def test_read_metrics_skips_a_torn_last_line_and_writes_nan_as_null(run: RunDir) -> None:
    # Prepare
    run.append_metrics({"round": 1, "metrics": {"auc": float("nan"), "loss": 0.5}})
    run.append_metrics({"round": 2, "metrics": {"auc": 0.8}})
    with run.metrics_file.open("a") as handle:
        handle.write('{"round": 3, "metr')  # a reader may see a line being written

    # Execute
    events = list(run.read_metrics())

    # Assert
    assert [e["round"] for e in events] == [1, 2]
    assert events[0]["metrics"]["auc"] is None


def test_read_events_types_the_lines_and_skips_the_others(run: RunDir) -> None:
    # Prepare
    fit = Event(1, Stage.FIT, Scope.FEDERATED, {"train-loss": 0.4}, {"0": {"examples": 9}}, 1.5)
    run.append_metrics(fit.to_dict())
    run.append_metrics({"round": 1, "metrics": {"auc": 0.8}})  # no stage: not an event
    with run.metrics_file.open("a") as handle:
        handle.write('{"round": 2, "stage": "ev')

    # Execute
    events = list(run.read_events())

    # Assert
    assert events == [fit]


def test_write_summary(run: RunDir) -> None:
    # Execute
    run.write_summary({"federated": {"auc": 0.8}})

    # Assert
    assert json.loads(run.summary_file.read_text())["federated"]["auc"] == 0.8


def test_create_lets_one_of_many_racing_processes_have_the_directory(tmp_path: Path) -> None:
    # Prepare: processes that all create the same run directory at the same moment
    import multiprocessing

    target = tmp_path / "same"
    context = multiprocessing.get_context("fork")
    start = context.Event()
    results = context.Queue()

    def claim() -> None:
        start.wait()
        try:
            RunDir.create(target, tmp_path, "fedavg")
            results.put("won")
        except UsageError:
            results.put("lost")

    workers = [context.Process(target=claim) for _ in range(8)]
    for worker in workers:
        worker.start()

    # Execute
    start.set()
    for worker in workers:
        worker.join(30)

    # Assert
    outcomes = sorted(results.get(timeout=5) for _ in workers)
    assert outcomes == ["lost"] * 7 + ["won"]


def test_create_says_a_file_is_not_a_directory(tmp_path: Path) -> None:
    # Prepare
    (tmp_path / "notes.txt").write_text("x")

    # Execute / Assert
    with pytest.raises(UsageError, match=r"notes.txt is a file, not a directory"):
        RunDir.create(tmp_path / "notes.txt", tmp_path, "fedavg")


def test_every_run_file_gets_the_same_mode(run: RunDir) -> None:
    # Prepare: the mode a plain new file gets under this process's umask
    plain = run.path / "plain"
    plain.write_text("x")

    # Execute
    run.write_config({"rounds": 1})
    run.mark_started(1)
    run.append_metrics({"round": 1})
    run.write_summary({"rounds": 1})

    # Assert
    modes = {p.name: p.stat().st_mode & 0o777 for p in run.path.iterdir()}
    assert set(modes.values()) == {plain.stat().st_mode & 0o777}, modes
