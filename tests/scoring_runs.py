"""Finished runs made by hand for the scoring tests: a real model and preprocessing, no federation.

The model keeps its seeded initial weights (no training): scoring only needs
a model whose outputs can be checked against the engine's own evaluation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tables import customers

from fedapp import data
from fedapp.runs import RunDir
from fedapp.settings import RunConfig

# One run per task: a file with an id column and a Yes/No target, and the demo's other targets.
TASKS = ("binary", "multiclass", "regression")


def task_config(task: str, root: Path) -> RunConfig:
    """A small run's settings for ``task``."""
    if task == "binary":
        path = root / "customers.csv"
        if not path.exists():
            customers(rows=240).to_csv(path, index=False)
        return RunConfig(
            data=str(path), target="Churn", id_column="customerID", clients=2, rounds=1, seed=3
        )
    target = {"multiclass": "next_plan", "regression": "next_year_spend"}[task]
    return RunConfig(target=target, demo_rows=600, clients=2, rounds=1, seed=3)


def make_scorable_run(root: Path, cfg: RunConfig, name: str) -> RunDir:
    """A finished run directory of ``cfg``: config, status, preprocessing and a model."""
    # TensorFlow: only the tests that score rows build a model.
    import keras

    from fedapp.learning.model import run_model

    prep = data.federated_preprocessor(cfg)
    model = run_model(cfg, prep)
    run = RunDir.create(root / name, root, cfg.strategy)
    run.write_config({**cfg.to_dict(), "task": str(prep.task), "client-sources": []})
    run.preprocessing_file.write_text(prep.to_json(), encoding="utf-8")
    keras.Model(model.inputs, model.outputs).save(run.model_file)
    run.set_status("finished", cfg.rounds, cfg.rounds)
    run.write_summary({"federated": {}, "rounds": cfg.rounds, "strategy": cfg.strategy})
    return run


def raw_rows(frame: pd.DataFrame, cfg: RunConfig) -> pd.DataFrame:
    """Typed rows (``data.global_test``) as a file holds them.

    A binary target by its class names, and made-up identifiers when the run
    has an id column (reading left it out).
    """
    prep = data.federated_preprocessor(cfg)
    out = frame.copy()
    if str(prep.task) == "binary":
        out[prep.target] = np.asarray(prep.encoding.classes, dtype=object)[out[prep.target]]
    if cfg.id_column:
        out.insert(0, cfg.id_column, [f"T{i:05d}" for i in range(len(out))])
    return out
