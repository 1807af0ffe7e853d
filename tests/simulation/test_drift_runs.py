"""SCAFFOLD and FedNova end to end on Flower's simulation engine (Ray): slow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedapp.cli import app

pytestmark = pytest.mark.slow

runner = CliRunner()


def _simulate(tmp_path: Path, *args: str) -> tuple[dict, list[dict]]:
    """Run ``fedapp simulate ARGS`` on a tiny federation; its summary and events."""
    result = runner.invoke(
        app,
        ["simulate", "--rounds", "2", "--no-baseline", "--runs-dir", str(tmp_path), "--json",
         *args],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (run,) = tmp_path.iterdir()
    assert json.loads((run / "status.json").read_text())["state"] == "finished"
    events = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    return json.loads((run / "summary.json").read_text()), events


def test_scaffold_run_finishes(tmp_path: Path) -> None:
    # Execute
    summary, events = _simulate(
        tmp_path, "--strategy", "scaffold", "--clients", "2", "--demo-rows", "600"
    )

    # Assert: two rounds trained by both clients; c_i's updates are not recorded
    assert summary["strategy"] == "scaffold" and summary["rounds"] == 2
    assert 0 <= summary["federated"]["auc"] <= 1
    fits = [e for e in events if e["stage"] == "fit"]
    assert [sorted(e["clients"]) for e in fits] == [["0", "1"], ["0", "1"]]
    assert all(set(c) >= {"train-loss", "examples"} for e in fits for c in e["clients"].values())
    assert "scaffold" not in json.dumps(fits)


def test_fednova_run_with_quantity_skew_finishes(tmp_path: Path) -> None:
    # Execute: one table split into clients of very different sizes
    summary, events = _simulate(
        tmp_path, "--strategy", "fednova", "--clients", "2", "--demo-rows", "600",
        "--partition", "quantity:0.5",
    )  # fmt: skip

    # Assert: the clients took different numbers of local steps (185 and 296 rows)
    assert summary["strategy"] == "fednova" and summary["rounds"] == 2
    small, large = sorted(c["train"] for c in summary["clients"].values())
    assert -(-large // 32) > -(-small // 32)
    assert 0 <= summary["federated"]["auc"] <= 1
    assert [e["round"] for e in events if e["stage"] == "fit"] == [1, 2]
