"""Checkpoints, and what resuming does to a run directory and refuses."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest

from fedapp.errors import UsageError
from fedapp.runs import Recorder, RunDir, RunState
from fedapp.runs.checkpoints import Checkpoint, config_hash, latest, rounds_in
from fedapp.runs.resuming import reopen, resumable, rewind_metrics


def _checkpoint(round_: int, config: dict | None = None) -> Checkpoint:
    arrays = {"weights": [np.full((2, 3), float(round_)), np.arange(3)], "strategy/m_t": []}
    state = {"time": 1.5 * round_, "plan": {"last_round": 6, "stop_reason": None}}
    return Checkpoint(round_, config_hash(config or {"seed": 1}), arrays, state)


def _run(tmp_path: Path, rounds_done: int = 3, pid: int | None = None) -> RunDir:
    """A run directory killed after ``rounds_done`` rounds, its process ``pid``."""
    run_dir = RunDir(tmp_path)
    tmp_path.mkdir(parents=True, exist_ok=True)
    run_dir.write_config({"seed": 1, "rounds": 6})
    run_dir.mark_started(6)
    run_dir.set_status(RunState.RUNNING, rounds_done, 6, pid=pid or 2**22 + 1, started=100.0)
    for r in range(1, rounds_done + 2):  # events of the round under way too
        run_dir.append_metrics({"round": r, "stage": "fit", "scope": "federated", "metrics": {}})
    with run_dir.metrics_file.open("a") as handle:
        handle.write('{"round": 4, "stage": "eva')  # torn by the kill
    for r in range(1, rounds_done + 1):
        _checkpoint(r, run_dir.read_config()).save(run_dir.checkpoints_dir, keep=2)
    return run_dir


def test_a_checkpoint_reads_back_as_written_and_the_newest_k_are_kept(tmp_path: Path) -> None:
    # Execute
    for r in (1, 2, 3):
        _checkpoint(r).save(tmp_path, keep=2)
    found = latest(tmp_path)

    # Assert
    assert rounds_in(tmp_path) == [2, 3]
    assert found is not None and found.round == 3
    np.testing.assert_array_equal(found.arrays["weights"][0], np.full((2, 3), 3.0))
    assert found.arrays["strategy/m_t"] == [] and found.state["time"] == 4.5
    assert found.config_hash == config_hash({"seed": 1})
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_failed_write_leaves_the_previous_checkpoint_whole(tmp_path: Path) -> None:
    # Prepare
    _checkpoint(1).save(tmp_path, keep=2)

    # Execute: the disk fills while round 2's is written
    full = OSError(28, "No space")
    with patch("fedapp.runs.directory.os.fsync", side_effect=full), pytest.raises(OSError):
        _checkpoint(2).save(tmp_path, keep=2)

    # Assert
    assert rounds_in(tmp_path) == [1] and latest(tmp_path).round == 1  # type: ignore[union-attr]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_config_hash_ignores_only_operational_settings() -> None:
    base = {"seed": 1, "rounds": 6, "strategy": "fedavg"}
    assert config_hash(base) == config_hash(base | {"rounds": 9, "checkpoint-every": 2})
    assert config_hash(base) != config_hash(base | {"seed": 2})


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "round-00001.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UsageError, match=r"round-00001\.npz is not a readable checkpoint"):
        latest(tmp_path)


def test_rewinding_keeps_the_checkpointed_rounds_events_and_drops_a_torn_line(
    tmp_path: Path,
) -> None:
    # Prepare
    run_dir = _run(tmp_path)

    # Execute
    dropped = rewind_metrics(run_dir, 3)

    # Assert
    assert [e["round"] for e in run_dir.read_metrics()] == [1, 2, 3]
    assert dropped == 2


def test_resuming_rewinds_marks_running_here_and_records_the_resume(tmp_path: Path) -> None:
    # Prepare
    run_dir = _run(tmp_path)
    run = resumable(tmp_path)
    recorder = Recorder(run_dir, 6, elapsed=4.5, round_=3)

    # Execute
    reopen(run, 6, recorder, {"warnings": ["w"]})

    # Assert
    status = run_dir.read_status()
    assert (status["state"], status["round"], status["pid"]) == ("running", 3, os.getpid())
    assert status["host"] == socket.gethostname() and status["started"] == 100.0
    *_, event = run_dir.read_metrics()
    assert (event["round"], event["stage"], event["from_state"]) == (3, "resumed", "interrupted")
    assert event["warnings"] == ["w"] and event["dropped_events"] == 2
    assert event["time"] >= 4.5


def test_a_run_whose_process_is_alive_is_not_resumed(tmp_path: Path) -> None:
    _run(tmp_path, pid=os.getpid())
    with pytest.raises(UsageError, match=r"is still running \(pid \d+\); stop it"):
        resumable(tmp_path)


def test_a_run_of_another_host_needs_other_host(tmp_path: Path) -> None:
    # Prepare
    run_dir = _run(tmp_path)
    run_dir.set_status(RunState.RUNNING, 3, 6, host="elsewhere")

    # Execute / Assert
    with pytest.raises(UsageError, match=r"started on host elsewhere.*--other-host"):
        resumable(tmp_path)
    assert resumable(tmp_path, other_host=True).checkpoint.round == 3


def test_a_changed_config_or_no_checkpoint_is_refused_and_nothing_changes(
    tmp_path: Path,
) -> None:
    # Prepare
    run_dir = _run(tmp_path / "changed")
    run_dir.write_config({"seed": 2, "rounds": 6})
    before = run_dir.metrics_file.read_text()
    empty = RunDir(tmp_path / "empty")
    empty.path.mkdir(parents=True)
    empty.write_config({"seed": 1})

    # Execute / Assert
    with pytest.raises(UsageError, match="no longer matches its round 3 checkpoint"):
        resumable(run_dir.path)
    with pytest.raises(UsageError, match="has no checkpoint to resume from"):
        resumable(empty.path)
    with pytest.raises(UsageError, match="is not a run directory"):
        resumable(tmp_path / "nowhere")
    assert run_dir.metrics_file.read_text() == before


def test_a_checkpoint_holds_json_state_only(tmp_path: Path) -> None:
    path = _checkpoint(1).save(tmp_path, keep=1)
    with np.load(path, allow_pickle=False) as npz:
        assert json.loads(str(npz["meta"]))["round"] == 1
