"""``fedapp simulate --rounds auto`` end to end on Flower's simulation engine (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from fedapp import data
from fedapp.data.stats import Preprocessor
from fedapp.learning.model import evaluate
from fedapp.settings import RunConfig

pytestmark = pytest.mark.slow


def test_an_automatic_run_stops_once_converged_and_keeps_its_best_round(tmp_path: Path) -> None:
    # Prepare: a high learning rate converges in a few rounds, far below max-rounds 200
    run_dir = tmp_path / "auto"
    args = [
        "--rounds", "auto", "--max-rounds", "200", "--patience", "2", "--clients", "2",
        "--demo-rows", "400", "--seed", "7", "--learning-rate", "0.05", "--no-baseline",
        "--run-dir", str(run_dir),
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
    # (training one of the 200 - ran idle rounds would take round_time)
    assert summary["wall_seconds"] - federated[ran]["time"] < 15 + 10 * round_time
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
