"""A run that calibrates its threshold and fine-tunes on each client, end to end (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fedapp import data
from fedapp.cli import app
from fedapp.learning.threshold import GRID
from fedapp.settings import RunConfig

pytestmark = pytest.mark.slow


def test_threshold_auto_and_fine_tuning_close_the_run(tmp_path: Path) -> None:
    # Prepare
    run_dir = tmp_path / "run"
    settings = ["--clients", "2", "--rounds", "2", "--demo-rows", "400", "--seed", "5"]

    # Execute
    out = subprocess.run(
        [sys.executable, "-m", "fedapp.cli", "simulate", *settings, "--threshold", "auto",
         "--personalize-epochs", "1", "--run-dir", str(run_dir)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip

    # Assert: the calibrated threshold, and the centralized baseline's beside it
    assert out.returncode == 0, out.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    cfg = RunConfig(clients=2, rounds=2, demo_rows=400, seed=5)
    test_rows = len(data.global_test(cfg))
    found = summary["threshold"]
    assert found["source"] == "calibrated" and found["metric"] == "f1"
    assert found["value"] in GRID and (found["clients"], found["rows"]) == (2, test_rows)
    assert set(found["metrics"]) == {"accuracy", "f1", "precision", "recall"}
    assert summary["centralized_threshold"]["value"] in GRID
    # The third column: each client's fine-tuned model on its own held-out rows.
    personal = summary["personalized"]
    assert personal["epochs"] == 1 and set(personal["clients"]) == {"0", "1"}
    assert all("auc" in c["fine_tuned"] for c in personal["clients"].values())
    assert "federated + fine-tuned" in out.stdout and "at the decision threshold" in out.stdout
    # No extra training round anywhere.
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(e["round"] for e in events) == 2 == summary["rounds"]
    assert json.loads((run_dir / "status.json").read_text())["round"] == 2
    assert "round 3" not in out.stderr

    # Execute: predict with the run's model
    rows = tmp_path / "rows.csv"
    data.global_test(cfg).to_csv(rows, index=False)
    predictions = tmp_path / "p.csv"
    said = CliRunner().invoke(
        app, ["predict", str(run_dir), "--data", str(rows), "--out", str(predictions), "--json"]
    )

    # Assert: its predicted class is positive at the calibrated threshold
    assert said.exit_code == 0, said.output
    assert json.loads(said.stdout)["threshold"] == found["value"]
    scored = pd.read_csv(predictions)
    negative, positive = summary["classes"]
    above = scored["churned_probability"] >= found["value"]
    expected = above.map({True: str(positive), False: str(negative)})
    assert (scored["churned_predicted"].astype(str) == expected).all()
