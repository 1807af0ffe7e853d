"""The target's task: inferred or given, read per task, counted and encoded federatedly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tables import CHURN, customers, fails, runner, write_csv

from fedapp import data
from fedapp.cli import app
from fedapp.data.stats import Schema, TargetEncoding, local_statistics, merge_statistics
from fedapp.data.target import class_order, decide, infer_task, strata
from fedapp.errors import UsageError
from fedapp.settings import RunConfig, Task


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (["yes", "no"] * 5, Task.BINARY),
        ([0, 1] * 5, Task.BINARY),
        (["basic", "pro", "max"] * 5, Task.MULTICLASS),
        ([1, 2, 3, 4] * 5, Task.MULTICLASS),  # a count of products: classes
        ([1.0, 2.0, 3.0] * 5, Task.MULTICLASS),  # whole numbers stored as floats
        (list(range(40)), Task.REGRESSION),  # many whole numbers: a quantity
        ([0.5, 1.25, 3.0, 7.5], Task.REGRESSION),  # fractions
    ],
)
def test_the_task_is_inferred_from_the_values(values: list, task: Task) -> None:
    assert infer_task(pd.Series(values), "t", "f.csv", 50)[0] is task


def test_a_single_value_or_too_many_text_classes_are_refused() -> None:
    with pytest.raises(UsageError, match=r"f\.csv: target 't' has a single value \(a\)"):
        infer_task(pd.Series(["a"] * 4), "t", "f.csv", 50)
    with pytest.raises(UsageError, match="60 distinct text values, more than max-categories"):
        infer_task(pd.Series([f"c{i}" for i in range(60)]), "t", "f.csv", 50)


def test_a_given_task_that_contradicts_the_values_is_refused() -> None:
    with pytest.raises(UsageError, match=r"--task regression needs a numeric target.*'gold'"):
        decide(pd.Series(["gold", "silver", "1"]), "t", "f.csv", Task.REGRESSION, 50)
    with pytest.raises(UsageError, match="--task binary needs two values, but 't' has 3"):
        decide(pd.Series([1, 2, 3]), "t", "f.csv", Task.BINARY, 50)
    # Numbers may be classes when the user says so, and two values may be multiclass.
    info, note = decide(pd.Series([1.5, 2.5, 3.5]), "t", "f.csv", Task.MULTICLASS, 50)
    assert info.classes == ("1.5", "2.5", "3.5") and "(given)" in note


def test_numeric_classes_sort_as_numbers() -> None:
    assert class_order(["10", "2", "1"]) == ("1", "2", "10")
    assert class_order(["b", "a", "10"]) == ("10", "a", "b")


def test_a_regression_target_is_stratified_by_quantile_bins() -> None:
    values = np.linspace(0, 1, 1000)
    bins = strata(values, Task.REGRESSION)
    assert len(np.unique(bins)) == 10
    assert np.all(np.diff(bins) >= 0)  # monotone in the value
    labels = np.array(["a", "b"])
    assert strata(labels, Task.MULTICLASS) is labels


def _stats(frame: pd.DataFrame, schema: Schema) -> dict:
    return local_statistics(frame, schema, min_count=1)


def test_class_counts_merge_into_every_class_and_encode_alike() -> None:
    # Prepare: client 0 never saw "max"; client 1 never saw "basic".
    schema = Schema(("x",), (), "plan", Task.MULTICLASS)
    a = pd.DataFrame({"x": [1.0, 2.0, 3.0], "plan": ["basic", "pro", "pro"]})
    b = pd.DataFrame({"x": [4.0, 5.0], "plan": ["max", "pro"]})

    # Execute
    merged = merge_statistics([_stats(a, schema), _stats(b, schema)])
    encoding = TargetEncoding.fit(merged["target"])

    # Assert: counts only (never a row), one code per class for every client.
    assert merged["target"]["counts"] == {"basic": 1, "pro": 3, "max": 1}
    assert encoding.classes == ("basic", "max", "pro") and encoding.outputs == 3
    # The federation's label prior, in class order, for label-skew correction.
    assert encoding.prior == pytest.approx((0.2, 0.2, 0.6))
    assert TargetEncoding.from_dict(encoding.to_dict()) == encoding
    np.testing.assert_array_equal(encoding.encode(b["plan"]), [1.0, 2.0])
    with pytest.raises(UsageError, match="class\\(es\\) gold were not seen in training"):
        encoding.encode(pd.Series(["gold"]))


def test_a_regression_target_is_standardised_from_federated_moments() -> None:
    schema = Schema(("x",), (), "spend", Task.REGRESSION)
    values = np.array([100.0, 300.0, 200.0, 1000.0, 50.0])
    parts = [
        pd.DataFrame({"x": 0.0, "spend": values[:2]}),
        pd.DataFrame({"x": 0.0, "spend": values[2:]}),
    ]
    merged = merge_statistics(_stats(p, schema) for p in parts)
    encoding = TargetEncoding.fit(merged["target"])
    assert encoding.mean == pytest.approx(values.mean())
    assert encoding.std == pytest.approx(values.std())
    y = encoding.encode(pd.Series(values))
    np.testing.assert_allclose(encoding.decode(y), values, rtol=1e-6)


def test_clients_that_read_different_tasks_are_told_to_pass_task() -> None:
    binary = {
        "rows": 2,
        "numeric": {},
        "categorical": {},
        "target": {"task": "binary", "classes": ["1", "2"], "counts": {"1": 1, "2": 1}},
    }
    multi = {
        "rows": 3,
        "numeric": {},
        "categorical": {},
        "target": {"task": "multiclass", "classes": [], "counts": {"1": 1, "2": 1, "3": 1}},
    }
    with pytest.raises(
        UsageError, match=r"different tasks .*binary.*multiclass at client 1.*--task"
    ):
        merge_statistics([binary, multi])


def _plan_table(rows: int = 90, seed: int = 0) -> pd.DataFrame:
    frame = customers(rows, seed)
    frame["Churn"] = np.resize(["basic", "standard", "premium"], rows)
    return frame


def test_a_text_target_of_three_classes_is_multiclass_and_said(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "plans.csv", _plan_table())
    result = runner.invoke(app, ["inspect", "--data", path, *CHURN])
    assert result.exit_code == 0, result.output
    assert "target 'Churn' is multiclass, 3 classes: basic, premium, standard" in result.output
    assert "(multiclass)" in result.output


def test_a_numeric_target_is_regression_and_said(tmp_path: Path) -> None:
    frame = customers(80)
    frame["Churn"] = np.random.default_rng(0).gamma(2.0, 500.0, 80).round(2)
    path = write_csv(tmp_path, "spend.csv", frame)
    result = runner.invoke(app, ["inspect", "--data", path, *CHURN])
    assert result.exit_code == 0, result.output
    assert "target 'Churn' is a regression target (numbers with 80 distinct values)" in (
        " ".join(result.output.split())
    )


def test_bad_tasks_exit_2_with_one_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "plans.csv", _plan_table())
    fails(tmp_path, ["--data", path, *CHURN, "--task", "ordinal"],
          "task must be one of binary, multiclass, regression, got 'ordinal'")  # fmt: skip
    fails(tmp_path, ["--data", path, *CHURN, "--task", "regression"],
          "--task regression needs a numeric target, but 'Churn' holds text")  # fmt: skip
    one = write_csv(tmp_path, "one.csv", customers(Churn="Yes"))
    fails(tmp_path, ["--data", one, *CHURN], "target 'Churn' has a single value (Yes)")


def test_a_class_held_by_one_client_is_warned_about_and_the_run_goes_on(tmp_path: Path) -> None:
    # Prepare: "premium" only at the second institution.
    first, second = _plan_table(60, 1), _plan_table(60, 2)
    first["Churn"] = np.resize(["basic", "standard"], 60)
    paths = [write_csv(tmp_path, "a.csv", first), write_csv(tmp_path, "b.csv", second)]
    cfg = RunConfig(client_data=tuple(paths), clients=2, target="Churn", id_column="customerID")

    loaded = data.load_federation(cfg)

    assert loaded.task == "multiclass"
    assert loaded.schema.classes == ("basic", "premium", "standard")
    [lone] = [w for w in loaded.warnings if "held by one client only" in w]
    assert "'premium' (#1 b.csv)" in lone


def test_dirichlet_skews_the_classes_of_a_multiclass_and_a_regression_target() -> None:
    for target in ("next_plan", "next_year_spend"):
        even = RunConfig(target=target, partition="iid", demo_rows=3000)
        skewed = even.replace(partition="dirichlet:0.1")
        spread = []
        for cfg in (even, skewed):
            clients = data.client_splits(cfg)
            # Bins of the pooled target, so that clients' bins are comparable.
            values = [c.train[target].to_numpy() for c in clients]
            pooled_bins = strata(np.concatenate(values), clients[0].schema.task)
            groups = np.split(pooled_bins, np.cumsum([len(v) for v in values])[:-1])
            # How unlike the pooled mix each client's classes (or bins) are.
            pooled = pd.Series(np.concatenate(groups)).value_counts(normalize=True)
            spread.append(max(
                (pd.Series(g).value_counts(normalize=True).reindex(pooled.index, fill_value=0)
                 - pooled).abs().sum()
                for g in groups
            ))  # fmt: skip
        assert spread[1] > 3 * spread[0], (target, spread)


def test_the_demo_leaves_out_its_other_outcomes() -> None:
    for target, task in (("churned", "binary"), ("next_plan", "multiclass"),
                         ("next_year_spend", "regression")):  # fmt: skip
        loaded = data.load_federation(RunConfig(target=target, demo_rows=600))
        features = set(loaded.schema.features)
        assert loaded.task == task
        assert not features & {"churned", "next_plan", "next_year_spend"}
