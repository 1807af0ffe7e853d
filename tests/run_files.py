"""Run directories written by hand through the run-directory contract, for readers' tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fedapp.runs import Event, RunDir, RunState, Scope, Stage, higher_is_better, primary

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
    events: Sequence[Event] = (FIRST,),
    **status: Any,
) -> RunDir:
    """A run directory written by hand through the run-directory contract."""
    run = RunDir.create(root / name, root, "fedavg")
    cfg = {**CONFIG, "run-dir": str(run.path), **(config or {})}
    run.write_config(cfg)
    run.set_status(state, round_, cfg["rounds"], **status)
    for event in events:
        run.append_metrics(event.to_dict())
    if summary is not None:
        run.write_summary(summary)
    return run


# Each task's demo target, final scores (federated), and the curves.json it writes.
TASK_TARGETS = {"binary": "churned", "multiclass": "next_plan", "regression": "next_year_spend"}
TASK_SCORES: dict[str, dict[str, float]] = {
    "binary": SUMMARY["federated"],
    "multiclass": {
        "accuracy": 0.8588, "macro_f1": 0.8478, "macro_auc": 0.9408, "loss": 0.515,
        "recall:basic": 0.7786, "recall:premium": 0.8764, "recall:standard": 0.8923,
    },
    "regression": {"rmse": 459.24, "mae": 357.82, "r2": 0.3043, "loss": 0.7067},
}  # fmt: skip
TASK_CURVES: dict[str, dict[str, Any]] = {
    "binary": {
        "task": "binary", "rows": 40, "positives": 10, "threshold": 0.5,
        "roc": {"fpr": [0, 0.2, 1], "tpr": [0, 0.7, 1], "auc": 0.83},
        "pr": {"recall": [0, 0.7, 1], "precision": [1, 0.6, 0.25], "auc": 0.6},
        "confusion": {"tn": 27, "fp": 3, "fn": 4, "tp": 6},
    },
    "multiclass": {
        "task": "multiclass", "rows": 602, "classes": ["basic", "premium", "standard"],
        "confusion": [[109, 27, 4], [30, 234, 3], [15, 6, 174]],
    },
    "regression": {
        "task": "regression", "rows": 598, "actual": [64.2, 993.0, 198.9],
        "predicted": [285.3, 1062.7, 739.5],
        "residual_quantiles": {"0.05": -702.3, "0.25": -304.8, "0.5": -55.7, "0.75": 256.5,
                               "0.95": 814.4},
    },
}  # fmt: skip


def make_task_run(root: Path, name: str, task: str) -> RunDir:
    """A finished two-round run of ``task`` on the demo, as ``fedapp simulate`` leaves it.

    Its scores improve towards :data:`TASK_SCORES` round by round (on the
    global test set and, weighted, on both clients' data); its summary has
    the centralized baseline (better by 0.01 on every score) and each
    institution's local-only score (worse than federated for both), and its
    ``curves.json`` is :data:`TASK_CURVES`'s.
    """
    final = TASK_SCORES[task]
    step = {m: 0.01 if higher_is_better(m) else -0.01 for m in final}
    events = []
    for r in range(CONFIG["rounds"] + 1):
        scores = {m: v - step[m] * (CONFIG["rounds"] - r) for m, v in final.items()}
        events.append(Event(r, Stage.EVALUATE, Scope.CENTRALIZED, scores))
        if r:
            clients = {"0": {**scores, "examples": 10}, "1": {**scores, "examples": 12}}
            events.append(Event(r, Stage.EVALUATE, Scope.FEDERATED, scores, clients))
    central = {m: v + step[m] for m, v in final.items()}
    main = primary(task)
    summary = {
        "federated": final, "centralized": central,
        "gap": {m: final[m] - central[m] for m in final},
        "local_only": {pid: {main: final[main] - 3 * step[main]} for pid in ("0", "1")},
        "wall_seconds": 21.0, "rounds": CONFIG["rounds"], "strategy": "fedavg",
        "target": TASK_TARGETS[task], "task": task,
    }  # fmt: skip
    config = {"task": task, "target": TASK_TARGETS[task]}
    run = make_run(root, name, config=config, summary=summary, events=events)
    run.write_curves(TASK_CURVES[task])
    return run
