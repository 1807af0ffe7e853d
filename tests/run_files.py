"""Run directories written by hand through the run-directory contract, for readers' tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedapp.runs import Event, RunDir, RunState, Scope, Stage

# A run's config.json as `fedapp simulate` writes it (demo data, two institutions).
CONFIG: dict[str, Any] = {
    "clients": 2,
    "clients-per-round": None,
    "rounds": 2,
    "local-epochs": 1,
    "batch-size": 32,
    "learning-rate": 0.001,
    "seed": 42,
    "strategy": "fedavg",
    "strategy-params": {},
    "data": "demo",
    "client-data": [],
    "demo-rows": 2000,
    "target": "churned",
    "positive-label": None,
    "id-column": None,
    "drop": [],
    "categorical": [],
    "partition": "column:institution",
    "test-fraction": 0.2,
    "min-category-count": 5,
    "hidden-units": [64, 32],
    "baseline": True,
    "run-dir": "runs/x",
    "client-sources": ["demo data (institution=inst-0)", "demo data (institution=inst-1)"],
    "data-notes": ["demo data: positive class of 'churned' is '1' (inferred)"],
    "data-warnings": [],
    "versions": {"fedapp": "0.1.0", "flwr": "1.42.0"},
}

SUMMARY: dict[str, Any] = {
    "federated": {"auc": 0.71, "accuracy": 0.75, "loss": 0.51},
    "centralized": {"auc": 0.76, "accuracy": 0.76, "loss": 0.49},
    "gap": {"auc": -0.05, "accuracy": -0.01, "loss": 0.02},
    "wall_seconds": 17.5,
}

FIRST = Event(0, Stage.EVALUATE, Scope.CENTRALIZED, {"auc": 0.5})


def make_run(
    root: Path,
    name: str,
    state: RunState = RunState.FINISHED,
    round_: int = 2,
    config: dict[str, Any] | None = None,
    summary: dict[str, Any] | None = None,
    **status: Any,
) -> RunDir:
    """A run directory written by hand through the run-directory contract."""
    run = RunDir.create(root / name, root, "fedavg")
    cfg = {**CONFIG, "run-dir": str(run.path), **(config or {})}
    run.write_config(cfg)
    run.set_status(state, round_, cfg["rounds"], **status)
    run.append_metrics(FIRST.to_dict())
    if summary is not None:
        run.write_summary(summary)
    return run
