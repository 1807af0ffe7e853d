"""Scoring new rows with a run's model: the engine's own evaluation, reproduced from a file.

Each run here is made by hand (:mod:`scoring_runs`): the run's preprocessing
fitted as the federation fits it, and a model with its seeded weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scoring_runs import TASKS, make_scorable_run, raw_rows, task_config

from fedapp import data
from fedapp.errors import UsageError
from fedapp.learning.metrics import score
from fedapp.learning.model import predict
from fedapp.learning.scoring import RunScorer, output_columns, predict_file


@pytest.fixture(scope="module", params=TASKS)
def scored_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A run of each task, its scorer, and its global test rows as a CSV file."""
    root = tmp_path_factory.mktemp(request.param)
    cfg = task_config(request.param, root)
    run = make_scorable_run(root / "runs", cfg, "run")
    test = data.global_test(cfg)
    path = root / "test.csv"
    raw_rows(test, cfg).to_csv(path, index=False)
    return cfg, RunScorer.load(run.path), test, path


def test_evaluate_on_the_global_test_rows_is_the_central_evaluation(scored_run) -> None:
    # Prepare: what the server computes on the global test set
    cfg, scorer, test, path = scored_run
    prep = data.federated_preprocessor(cfg)
    x, y = prep.transform(test)
    expected = score(prep.encoding, y, predict(scorer.model, x))

    # Execute
    result = predict_file(scorer, path, evaluate=True, chunk_rows=50)

    # Assert
    assert result.rows == result.evaluated == len(test)
    assert result.metrics is not None and result.metrics.keys() == expected.keys()
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, abs=1e-6, nan_ok=True), name


def test_chunked_scoring_equals_scoring_at_once(scored_run, tmp_path: Path) -> None:
    # Prepare
    _, scorer, _, path = scored_run

    # Execute
    small = predict_file(scorer, path, tmp_path / "small.csv", evaluate=True, chunk_rows=7)
    whole = predict_file(scorer, path, tmp_path / "whole.csv", evaluate=True, chunk_rows=10**6)

    # Assert
    pd.testing.assert_frame_equal(pd.read_csv(small.out), pd.read_csv(whole.out))
    assert small.metrics == pytest.approx(whole.metrics, abs=1e-6, nan_ok=True)


def test_parquet_in_and_out_give_the_csv_predictions(scored_run, tmp_path: Path) -> None:
    # Prepare
    _, scorer, _, path = scored_run
    parquet = tmp_path / "test.parquet"
    pd.read_csv(path).to_parquet(parquet)

    # Execute
    as_csv = predict_file(scorer, path, tmp_path / "p.csv")
    as_parquet = predict_file(scorer, parquet, tmp_path / "p.parquet", chunk_rows=30)

    # Assert
    from_parquet = pd.read_parquet(as_parquet.out)
    assert list(from_parquet.columns) == list(scorer.columns)
    pd.testing.assert_frame_equal(
        from_parquet, pd.read_csv(as_csv.out, dtype={c: object for c in from_parquet
                                                     if from_parquet[c].dtype == object}),
        check_dtype=False,
    )  # fmt: skip


def test_columns_in_any_order_extra_ones_and_unseen_categories(scored_run, tmp_path: Path) -> None:
    # Prepare: the same rows, reordered, with an extra column and a category never seen
    _, scorer, _, path = scored_run
    rows = pd.read_csv(path)
    [category, *_] = scorer.schema.categorical
    rows.loc[:4, category] = "never-seen-before"
    as_other = rows.copy()
    as_other.loc[:4, category] = None  # a blank category is "other" too
    shuffled = rows[list(reversed(rows.columns))].assign(extra="ignored")
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    as_other.to_csv(tmp_path / "other.csv", index=False)

    # Execute
    one = predict_file(scorer, tmp_path / "shuffled.csv", tmp_path / "one.csv")
    two = predict_file(scorer, tmp_path / "other.csv", tmp_path / "two.csv")

    # Assert
    pd.testing.assert_frame_equal(pd.read_csv(one.out), pd.read_csv(two.out))


def test_the_predictions_columns_per_task(scored_run, tmp_path: Path) -> None:
    # Prepare
    cfg, scorer, _, path = scored_run
    encoding = scorer.encoding

    # Execute
    result = predict_file(scorer, path, tmp_path / "p.csv")
    out = pd.read_csv(result.out, dtype=str)

    # Assert
    ids = [cfg.id_column] if cfg.id_column else []
    assert list(out.columns) == [*ids, *output_columns(encoding, cfg.resolved_target)]
    predicted = out[f"{cfg.resolved_target}_predicted"]
    if str(encoding.task) == "binary":
        assert output_columns(encoding, "Churn") == ("Churn_probability", "Churn_predicted")
        assert set(predicted) <= {"Yes", "No"}
        probability = out["Churn_probability"].astype(float)
        assert ((probability >= 0.5) == (predicted == "Yes")).all()
        assert out[cfg.id_column].tolist() == pd.read_csv(path)[cfg.id_column].tolist()
    elif str(encoding.task) == "multiclass":
        probabilities = out[[f"next_plan_probability_{c}" for c in encoding.classes]]
        assert np.allclose(probabilities.astype(float).sum(axis=1), 1.0, atol=1e-5)
        assert set(predicted) <= set(encoding.classes)
    else:
        spend = predicted.astype(float)
        # In the target's units: standardised values would sit around 0 with unit spread.
        assert abs(spend.mean() - encoding.mean) < 3 * encoding.std


def test_a_run_without_a_model_cannot_score(tmp_path: Path) -> None:
    # Prepare
    cfg = task_config("binary", tmp_path)
    run = make_scorable_run(tmp_path / "runs", cfg, "run")
    run.model_file.unlink()

    # Execute, Assert
    with pytest.raises(UsageError, match=r"run run has no model\.keras: it has no model to score"):
        RunScorer.load(run.path)
