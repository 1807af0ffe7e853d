"""A multiclass and a regression federation, end to end, against their centralized baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedapp.runs import RunView
from fedapp.settings import RunConfig
from fedapp.simulation import simulate

pytestmark = pytest.mark.slow

DEMO = {"rounds": 8, "demo_rows": 4000, "seed": 42}


def test_a_multiclass_federation_comes_within_a_few_percent_of_centralized(tmp_path: Path) -> None:
    run, summary = simulate(RunConfig(target="next_plan", **DEMO), tmp_path)

    assert summary["task"] == "multiclass" and summary["target"] == "next_plan"
    assert summary["classes"] == ["basic", "premium", "standard"]
    federated, pooled = summary["federated"], summary["centralized"]
    assert federated["accuracy"] > 0.75
    assert federated["accuracy"] >= pooled["accuracy"] - 0.03
    assert federated["macro_f1"] >= pooled["macro_f1"] - 0.03
    assert {f"recall:{c}" for c in summary["classes"]} <= set(federated)
    view = RunView.read(run.path)
    assert view.task == "multiclass" and view.primary_metric == "accuracy"
    curves = json.loads((run.path / "curves.json").read_text())
    assert curves["task"] == "multiclass" and len(curves["confusion"]) == 3
    assert sum(map(sum, curves["confusion"])) == curves["rows"]
    clients = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    evaluated = [e for e in clients if e["stage"] == "evaluate" and e["scope"] == "federated"]
    assert {"accuracy", "macro_f1", "loss"} <= set(evaluated[-1]["metrics"])


def test_a_regression_federation_is_reported_in_the_targets_units(tmp_path: Path) -> None:
    run, summary = simulate(RunConfig(target="next_year_spend", **DEMO), tmp_path)

    assert summary["task"] == "regression"
    federated, pooled = summary["federated"], summary["centralized"]
    # Spend is in currency units (hundreds), not the standardised scale (about 1).
    assert 50 < federated["rmse"] < 1000 and federated["mae"] < federated["rmse"]
    assert federated["rmse"] <= 1.05 * pooled["rmse"]
    assert federated["r2"] > 0.5 and federated["r2"] >= pooled["r2"] - 0.03
    curves = json.loads((run.path / "curves.json").read_text())
    assert curves["task"] == "regression" and len(curves["actual"]) == len(curves["predicted"])


def test_privacy_secure_aggregation_and_attacks_run_for_every_task(tmp_path: Path) -> None:
    short = {"rounds": 2, "demo_rows": 1500, "baseline": False}
    for cfg in (
        # Record-level DP (DP-SGD on the regression loss) with label skew on spend bins.
        RunConfig(target="next_year_spend", dp="record", partition="dirichlet:1",
                  clients=3, **short),
        # Label flipping as a fixed permutation of the plans, under SecAgg+ and central DP.
        RunConfig(target="next_plan", malicious=1, attack="label-flip", secure_aggregation=True,
                  dp="central", dp_clipping="client", noise_multiplier=0.1, **short),
    ):  # fmt: skip
        run, summary = simulate(cfg, tmp_path)
        assert RunView.read(run.path).state == "finished", cfg
        assert summary["privacy"]["epsilon"] > 0
