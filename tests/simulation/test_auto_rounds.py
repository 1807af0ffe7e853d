"""``fedapp simulate --rounds auto`` and the closing round after it, end to end (slow).

One run covers both: the closing round (threshold calibration, fine-tuning)
follows the round an automatic run converged at.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import pandas as pd
import pytest
from typer.testing import CliRunner

from fedapp import data
from fedapp.cli import app
from fedapp.data.stats import Preprocessor
from fedapp.learning.model import evaluate
from fedapp.learning.threshold import GRID
from fedapp.settings import RunConfig

pytestmark = pytest.mark.slow


def test_an_automatic_run_stops_once_converged_keeps_its_best_round_and_closes(
    tmp_path: Path,
) -> None:
    # Prepare: a high learning rate converges in a few rounds, far below max-rounds 200
    run_dir = tmp_path / "auto"
    args = [
        "--rounds", "auto", "--max-rounds", "200", "--patience", "2", "--clients", "2",
        "--demo-rows", "400", "--seed", "7", "--learning-rate", "0.05",
        "--threshold", "auto", "--personalize-epochs", "1", "--run-dir", str(run_dir),
    ]  # fmt: skip

    # Execute
    out = subprocess.run(
        [sys.executable, "-m", "fedapp", "simulate", *args],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip

    # Assert: finished where it converged, saying at which round
    assert out.returncode == 0, out.stderr
    status = json.loads((run_dir / "status.json").read_text())
    summary = json.loads((run_dir / "summary.json").read_text())
    auto = summary["auto_rounds"]
    best, ran = auto["best_round"], summary["rounds"]
    assert (status["state"], status["reason"]) == ("finished", f"converged at round {best}")
    assert (status["round"], status["rounds"]) == (ran, 200)
    assert auto["converged"] and ran == best + 2 < 30
    assert f"rounds auto: model.keras is the model of round {best}" in out.stdout
    card = (run_dir / "model_card.md").read_text()
    assert f"| rounds run | {ran} (converged at round {best}) |" in card
    # The idle rounds after it wrote nothing and cost next to nothing
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert max(e["round"] for e in events) == ran
    evaluated = [e for e in events if e["stage"] == "evaluate"]
    federated = {e["round"]: e for e in evaluated if e["scope"] == "federated"}
    round_time = (federated[ran]["time"] - federated[1]["time"]) / max(ran - 1, 1)
    # Training the 200 - ran idle rounds would take round_time each; what follows the
    # last round (the baselines, the closing round) takes a fraction of that.
    idle = 200 - ran
    assert summary["wall_seconds"] - federated[ran]["time"] < idle * round_time / 2
    # The summary's scores and model.keras are the best round's, not the last's
    central = {e["round"]: e["metrics"] for e in evaluated if e["scope"] == "centralized"}
    assert summary["federated"] == central[best] != central[ran]
    assert summary["federated_evaluation"] == federated[best]["metrics"]
    assert auto["best"] == pytest.approx(federated[best]["metrics"]["loss"])
    cfg = RunConfig.from_file(run_dir / "config.json")
    prep = Preprocessor.from_json((run_dir / "preprocessing.json").read_text())
    model = keras.saving.load_model(run_dir / "model.keras")
    scores = evaluate(model, *prep.transform(data.global_test(cfg)), prep.encoding)
    assert scores["loss"] == pytest.approx(central[best]["loss"], rel=1e-5)
    assert json.loads((run_dir / "curves.json").read_text())["round"] == best
    assert "round 200" not in out.stderr and f"round {ran + 1}" not in out.stderr
    _assert_closed(tmp_path, run_dir, summary, cfg, out.stdout)


def _assert_closed(
    tmp_path: Path, run_dir: Path, summary: dict, cfg: RunConfig, stdout: str
) -> None:
    """The closing round's threshold and fine-tuning, and `fedapp predict` at that threshold."""
    # The calibrated threshold, and the centralized baseline's beside it
    found = summary["threshold"]
    assert found["source"] == "calibrated" and found["metric"] == "f1"
    test_rows = len(data.global_test(cfg))
    assert found["value"] in GRID and (found["clients"], found["rows"]) == (2, test_rows)
    assert set(found["metrics"]) == {"accuracy", "f1", "precision", "recall"}
    assert summary["centralized_threshold"]["value"] in GRID
    # The third column: each client's fine-tuned model on its own held-out rows.
    personal = summary["personalized"]
    assert personal["epochs"] == 1 and set(personal["clients"]) == {"0", "1"}
    assert all("auc" in c["fine_tuned"] for c in personal["clients"].values())
    assert "federated + fine-tuned" in stdout and "at the decision threshold" in stdout

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
