"""Resuming a deployed run (``resume = true``): which run, and what its run config may change."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedapp.errors import UsageError
from fedapp.flower.run_setup import prepare_resume
from fedapp.runs import RunDir, RunState
from fedapp.runs.checkpoints import Checkpoint, config_hash
from fedapp.runs.resuming import newest_unfinished
from fedapp.settings import RunConfig

DEPLOYED = {"data": "node", "clients": 2, "rounds": 4, "target": "churned"}


def _killed_run(path: Path, state: RunState = RunState.RUNNING, started: float = 1.0) -> RunDir:
    """A deployed run whose ServerApp died after round 2's checkpoint."""
    path.mkdir(parents=True)
    run_dir = RunDir(path)
    run_dir.write_config(RunConfig(**DEPLOYED).to_dict())
    run_dir.set_status(state, 2, 4, pid=999999999, host="here", started=started)
    state_ = {"plan": {"last_round": 4, "stop_reason": None}}
    Checkpoint(2, config_hash(run_dir.read_config()), {}, state_).save(run_dir.checkpoints_dir, 2)
    return run_dir


def test_the_newest_unfinished_run_with_a_checkpoint_is_resumed(tmp_path: Path) -> None:
    # Prepare: an older run killed on another host, a newer finished one, the
    # newest without checkpoint
    _killed_run(tmp_path / "old", started=1.0)
    _killed_run(tmp_path / "done", RunState.FINISHED, started=2.0)
    bare = tmp_path / "bare"
    bare.mkdir()
    RunDir(bare).write_config({"rounds": 1})
    RunDir(bare).set_status(RunState.FAILED, 0, 1, started=3.0)

    # Execute / Assert
    assert newest_unfinished(tmp_path) == tmp_path / "old"
    with pytest.raises(UsageError, match=r"no run under .* ended unfinished"):
        newest_unfinished(tmp_path / "nowhere")


def test_a_run_config_with_the_runs_settings_resumes_and_more_rounds_extend(
    tmp_path: Path,
) -> None:
    # Prepare
    run_dir = _killed_run(tmp_path / "run")

    # Execute
    cfg, run, warnings = prepare_resume(
        run_dir.path, other_host=True, asked=RunConfig(**DEPLOYED | {"rounds": 6}, resume=True)
    )

    # Assert
    assert cfg.rounds == 6 and run.checkpoint.round == 2
    assert run_dir.read_config()["rounds"] == 6
    assert any("state-dir" in w for w in warnings)


def test_a_run_config_that_changes_a_setting_is_refused(tmp_path: Path) -> None:
    run_dir = _killed_run(tmp_path / "run")
    with pytest.raises(UsageError, match=r"differs from run run's settings in learning-rate, seed"):
        prepare_resume(
            run_dir.path,
            other_host=True,
            asked=RunConfig(**DEPLOYED, seed=9, learning_rate=0.01, resume=True),
        )
    assert run_dir.read_config()["seed"] == RunConfig().seed
