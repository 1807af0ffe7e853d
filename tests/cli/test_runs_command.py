"""``fedapp runs``: the runs of a folder from the read model the UI uses."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fedapp.cli import app
from fedapp.runs import RunDir, RunState

runner = CliRunner()

SUMMARY: dict[str, Any] = {
    "strategy": "fedprox",
    "rounds": 3,
    "federated": {"auc": 0.712345},
    "wall_seconds": 17.54,
}


def make_run(root: Path, name: str, state: RunState, round_: int, **status: Any) -> RunDir:
    """A run directory of 3 rounds, as `fedapp simulate` leaves it."""
    run = RunDir.create(root / name, root, "fedprox")
    run.write_config({"rounds": 3, "strategy": "fedprox", "strategy-params": {"proximal-mu": 0.1}})
    run.set_status(state, round_, 3, **status)
    return run


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process of ours that has ended and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


@pytest.fixture
def folder(tmp_path: Path, dead_pid: int) -> Path:
    """A finished run, then a newer one whose process died mid-run."""
    done = make_run(tmp_path, "done", RunState.FINISHED, 3, started=1_000.0)
    done.write_summary(SUMMARY)
    host = socket.gethostname()
    make_run(tmp_path, "died", RunState.RUNNING, 1, pid=dead_pid, host=host, started=2_000.0)
    return tmp_path


def test_json_lists_each_run_newest_first(folder: Path) -> None:
    # Execute
    result = runner.invoke(app, ["runs", "--runs-dir", str(folder), "--json"])

    # Assert
    assert result.exit_code == 0, result.output
    died, done = json.loads(result.stdout)
    assert {k: died[k] for k in ("run", "state", "round", "rounds", "federated_auc")} == {
        "run": "died", "state": "interrupted", "round": 1, "rounds": 3, "federated_auc": None,
    }  # fmt: skip
    assert done == {
        "run": "done",
        "state": "finished",
        "round": 3,
        "rounds": 3,
        "strategy": "fedprox (proximal-mu 0.1)",
        "federated_auc": 0.712345,
        "model_round": None,
        "wall_seconds": 17.5,
        "path": str(folder / "done"),
    }


def test_table_shows_state_rounds_strategy_auc_and_wall_time(folder: Path) -> None:
    # Execute
    result = runner.invoke(app, ["runs", "--runs-dir", str(folder)], terminal_width=200)

    # Assert
    assert result.exit_code == 0, result.output
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if "fedprox" in line}
    assert list(rows) == ["died", "done"]
    assert all(word in rows["done"] for word in ("finished", "3/3", "0.7123", "17.5 s"))
    assert all(word in rows["died"] for word in ("interrupted", "1/3"))


def test_an_empty_or_missing_folder_lists_no_runs(tmp_path: Path) -> None:
    # Execute
    listed = runner.invoke(app, ["runs", "--runs-dir", str(tmp_path / "none"), "--json"])
    told = runner.invoke(app, ["runs", "--runs-dir", str(tmp_path / "none")])

    # Assert
    assert (listed.exit_code, json.loads(listed.stdout)) == (0, [])
    assert told.exit_code == 0 and "no runs in" in told.stderr


def test_a_stopped_run_shows_the_auc_of_the_round_it_kept(tmp_path: Path) -> None:
    # Prepare: stopped after round 2 of 5, its model of round 2 kept
    run = make_run(tmp_path, "cut", RunState.STOPPED, 2, error="stopped (SIGTERM)")
    run.write_summary({**SUMMARY, "partial": True, "round": 2})

    # Execute
    listed = runner.invoke(app, ["runs", "--runs-dir", str(tmp_path), "--json"])
    table = runner.invoke(app, ["runs", "--runs-dir", str(tmp_path)], terminal_width=200)

    # Assert
    [row] = json.loads(listed.stdout)
    assert (row["state"], row["federated_auc"], row["model_round"]) == ("stopped", 0.712345, 2)
    assert "0.7123 (round 2)" in table.stdout
