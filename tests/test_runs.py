import json
from pathlib import Path

import pytest

from fedapp.errors import UsageError
from fedapp.runs import RunDir


def test_create_refuses_to_reuse_a_run(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "exp1", tmp_path, "fedavg")
    run.write_config({"rounds": 1})
    with pytest.raises(UsageError, match="already exists and is not empty"):
        RunDir.create(tmp_path / "exp1", tmp_path, "fedavg")
    generated = RunDir.create(None, tmp_path / "runs", "fedprox")
    assert generated.path.parent == tmp_path / "runs" and "fedprox" in generated.run_id


def test_status_metrics_and_summary(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "r", tmp_path, "x")
    run.set_status("running", 2, 5)
    assert run.read_status() == {"state": "running", "round": 2, "rounds": 5, "error": None}
    run.set_status("failed", 2, 5, error="boom")
    assert run.read_status()["error"] == "boom"
    assert [p.name for p in run.path.iterdir() if p.name.startswith(".")] == []
    run.append_metrics({"round": 1, "metrics": {"auc": float("nan"), "loss": 0.5}})
    run.append_metrics({"round": 2, "metrics": {"auc": 0.8}})
    with run.metrics_file.open("a") as handle:
        handle.write('{"round": 3, "metr')  # a reader may see a line being written
    events = list(run.read_metrics())
    assert [e["round"] for e in events] == [1, 2]
    assert events[0]["metrics"]["auc"] is None
    run.write_summary({"federated": {"auc": 0.8}})
    assert json.loads(run.summary_file.read_text())["federated"]["auc"] == 0.8


def test_invalid_state_is_a_bug(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "r", tmp_path, "x")
    with pytest.raises(AssertionError):
        run.set_status("done", 0, 1)
