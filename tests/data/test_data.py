import json

import numpy as np
import pandas as pd
import pytest

from fedapp import data
from fedapp.data.partition import dirichlet, iid, partition, stratified_split
from fedapp.data.stats import Preprocessor, Schema, local_statistics, merge_statistics
from fedapp.data.synthetic import INSTITUTION, TARGET, make_churn_table
from fedapp.errors import UsageError
from fedapp.settings import RunConfig
from fedapp.settings.specs import PartitionSpec


def test_synthetic_table_is_seeded_non_iid_and_has_blanks() -> None:
    a = make_churn_table(rows=6000, institutions=3, seed=1)
    b = make_churn_table(rows=6000, institutions=3, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert 0.2 < a[TARGET].mean() < 0.3
    assert a["age"].isna().any()
    assert set(a[INSTITUTION]) == {"inst-0", "inst-1", "inst-2"}
    # Institutions serve different customers: contract mixes differ.
    mix = pd.crosstab(a[INSTITUTION], a["contract"], normalize="index")
    assert (mix.max() - mix.min()).max() > 0.1
    assert not make_churn_table(rows=6000, institutions=3, seed=2).equals(a)


def test_partition_spec_parsing() -> None:
    assert PartitionSpec.parse("iid") == PartitionSpec("iid")
    assert PartitionSpec.parse("dirichlet:0.5").alpha == 0.5
    assert PartitionSpec.parse("column:Geography").column == "Geography"
    for bad, message in [
        ("dirichlet:0", "alpha must be > 0"),
        ("dirichlet:-1", "alpha must be > 0"),
        ("dirichlet:x", "needs a number"),
        ("random", "is not one of"),
        ("column:", "is not one of"),
    ]:
        with pytest.raises(UsageError, match=message):
            PartitionSpec.parse(bad)


@pytest.mark.parametrize("kind", ["dirichlet", "quantity"])
def test_an_alpha_no_draw_can_use_never_asks_for_a_larger_one(kind: str) -> None:
    # Prepare
    frame = pd.DataFrame({TARGET: [0, 1] * 50})

    # Execute
    with pytest.raises(UsageError) as infinite:
        PartitionSpec.parse(f"{kind}:inf")
    with pytest.raises(UsageError) as huge:
        partition(frame, PartitionSpec.parse(f"{kind}:1e308"), 4, TARGET, 0)

    # Assert
    assert str(infinite.value) == (
        f"partition '{kind}:inf': {kind} alpha must be a finite number > 0 (the larger, the "
        "more even the split; for an even split use iid)"
    )
    assert str(huge.value) == (
        f"{kind}:1e+308: alpha is too large to draw shares from (so large an alpha is an "
        "even split: use iid)"
    )


def test_iid_deals_every_row_once() -> None:
    parts = iid(103, 4, np.random.default_rng(0))
    assert sorted(np.concatenate(parts).tolist()) == list(range(103))
    assert {len(p) for p in parts} <= {25, 26}


def test_dirichlet_skews_labels_and_keeps_every_row() -> None:
    labels = np.array([0] * 800 + [1] * 200)
    parts = dirichlet(labels, 5, 0.1, np.random.default_rng(3))
    assert sorted(np.concatenate(parts).tolist()) == list(range(1000))
    rates = [labels[p].mean() for p in parts]
    assert max(rates) - min(rates) > 0.3
    assert min(len(p) for p in parts) >= 10


def test_dirichlet_reports_an_impossible_minimum() -> None:
    labels = np.array([0] * 30 + [1] * 10)
    with pytest.raises(UsageError, match="use a larger alpha or fewer clients"):
        dirichlet(labels, 4, 0.001, np.random.default_rng(0))


def test_quantity_skews_sizes_but_not_labels() -> None:
    labels = np.array([0, 1] * 1000)
    parts = partition(pd.DataFrame({TARGET: labels}), PartitionSpec.parse("quantity:0.5"), 5,
                      TARGET, 3)  # fmt: skip
    sizes = sorted(len(p) for p in parts)
    assert sum(sizes) == 2000 and sizes[-1] > 3 * sizes[0] and sizes[0] >= 10
    assert all(abs(labels[p].mean() - 0.5) < 0.2 for p in parts)
    with pytest.raises(UsageError, match="quantity alpha must be > 0"):
        PartitionSpec.parse("quantity:0")
    with pytest.raises(UsageError, match="use a larger alpha or fewer clients"):
        partition(pd.DataFrame({TARGET: labels[:40]}), PartitionSpec.parse("quantity:0.001"),
                  4, TARGET, 0)  # fmt: skip


def test_column_partition_needs_matching_client_count() -> None:
    frame = pd.DataFrame({"g": ["a", "b", "a", "c"], TARGET: [0, 1, 0, 1]})
    parts = partition(frame, PartitionSpec.parse("column:g"), 3, TARGET, 0)
    assert [p.tolist() for p in parts] == [[0, 2], [1], [3]]
    with pytest.raises(UsageError, match="gives 3 clients but clients is 2; pass --clients 3"):
        partition(frame, PartitionSpec.parse("column:g"), 2, TARGET, 0)
    with pytest.raises(UsageError, match="'nope' is not in the data"):
        partition(frame, PartitionSpec.parse("column:nope"), 3, TARGET, 0)


def test_iid_refuses_more_clients_than_rows() -> None:
    frame = pd.DataFrame({TARGET: [0, 1, 0]})
    with pytest.raises(UsageError, match="3 rows cannot fill 5 clients"):
        partition(frame, PartitionSpec("iid"), 5, TARGET, 0)


def test_stratified_split_keeps_class_balance() -> None:
    labels = np.array([0] * 80 + [1] * 20)
    train, test = stratified_split(labels, 0.25, np.random.default_rng(0))
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 100
    assert labels[test].sum() == 5 and len(test) == 25


def test_client_splits_cover_the_table_without_overlap(small_cfg: RunConfig) -> None:
    splits = data.client_splits(small_cfg)
    assert len(splits) == small_cfg.clients
    total = sum(len(c.train) + len(c.test) for c in splits)
    assert total == small_cfg.demo_rows
    pooled = data.pooled_train(small_cfg)
    assert len(pooled) + len(data.global_test(small_cfg)) == total
    # The natural split: one institution per client.
    assert [c.train[INSTITUTION].nunique() for c in splits] == [1, 1, 1]


def test_federated_statistics_equal_pooled_statistics(small_cfg: RunConfig) -> None:
    splits = data.client_splits(small_cfg)
    schema = splits[0].schema
    merged = merge_statistics(local_statistics(c.train, schema, 1) for c in splits)
    pooled = local_statistics(data.pooled_train(small_cfg), schema, 1)
    assert merged["rows"] == pooled["rows"] and merged["target"] == pooled["target"]
    for column, triple in pooled["numeric"].items():
        np.testing.assert_allclose(merged["numeric"][column], triple, rtol=1e-12)
    assert merged["categorical"] == pooled["categorical"]


@pytest.mark.parametrize(
    "values",
    [
        3e9 + np.arange(4.0),  # std 1.118
        1.7e12 + np.random.default_rng(0).uniform(0, 1000, 600).round(),  # ms in one second
        -5e9 + np.random.default_rng(1).normal(0, 3, 300),
        np.random.default_rng(2).normal(40, 12, 500),
    ],
    ids=["offset-3e9", "ms-timestamps", "negative-offset", "plain"],
)
def test_federated_standardisation_matches_numpy_on_a_large_offset(values: np.ndarray) -> None:
    # Prepare: uneven clients, one of which has only blanks in the column
    schema = Schema(("t",), (), TARGET)
    chunks = [
        values[:1],
        values[1 : len(values) // 3],
        [np.nan, np.nan],
        values[len(values) // 3 :],
    ]
    frames = [pd.DataFrame({"t": c, TARGET: np.zeros(len(c), int)}) for c in chunks]

    # Execute
    merged = merge_statistics(local_statistics(f, schema, 1) for f in frames)
    [(_, mean, std)] = Preprocessor.fit(merged, schema, 1).numeric

    # Assert: to within what a float64 mean at that offset can say (its last bit)
    assert mean == pytest.approx(np.mean(values), rel=1e-15)
    assert std == pytest.approx(np.std(values), rel=1e-6)


def test_statistics_hold_only_aggregates() -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, 2.0, np.nan, 4.0],
            "plan": ["a", "a", "a", "rare"],
            TARGET: [0, 1, 0, 1],
        }
    )
    stats = local_statistics(frame, Schema(("x",), ("plan",), TARGET), min_count=2)
    assert stats == {
        "rows": 4,
        "target": {"task": "binary", "classes": ["0", "1"], "counts": {"0": 2, "1": 2}},
        # count, mean and sum of squared deviations (M2) of 1, 2, 4
        "numeric": {"x": [3.0, pytest.approx(7 / 3), pytest.approx(42 / 9)]},
        "categorical": {"plan": {"a": 3}},  # "rare" (1 < 2) is never reported
    }
    json.dumps(stats)


def test_preprocessor_standardises_imputes_and_folds_rare_categories() -> None:
    schema = Schema(("x",), ("plan",), TARGET)
    stats = {
        "rows": 4,
        "target": {"task": "binary", "classes": ["no", "yes"], "counts": {"no": 3, "yes": 1}},
        "numeric": {"x": [2.0, 2.0, 2.0]},  # mean 2, var M2 / count = 1
        "categorical": {"plan": {"a": 5, "b": 1}},
    }
    prep = Preprocessor.fit(stats, schema, min_count=2)
    assert prep.categorical == (("plan", ("a",)),)
    frame = pd.DataFrame({"x": [3.0, np.nan], "plan": ["b", None], TARGET: [1, 0]})
    x, y = prep.transform(frame)
    np.testing.assert_allclose(x, [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(y, [1.0, 0.0])
    assert prep.n_features == 3
    assert Preprocessor.from_json(prep.to_json()) == prep


def test_client_data_rejects_unknown_partition(small_cfg: RunConfig) -> None:
    with pytest.raises(UsageError, match=r"outside 0\.\.2"):
        data.client_share(small_cfg, 3)


def test_a_validation_fraction_holds_out_part_of_each_clients_training_rows() -> None:
    # Prepare
    cfg = RunConfig(clients=3, demo_rows=900, seed=7)
    held = cfg.replace(validation_fraction=0.25)

    # Execute
    plain, split = data.client_splits(cfg), data.client_splits(held)

    # Assert: the test rows are the same; the training rows are split, stratified
    for before, after in zip(plain, split, strict=True):
        assert before.validation is None and before.evaluation is before.test
        assert after.validation is not None and after.evaluation is after.validation
        assert after.test.equals(before.test)
        assert len(after.train) + len(after.validation) == len(before.train)
        assert len(after.validation) == pytest.approx(0.25 * len(before.train), abs=2)
        assert set(after.train.index).isdisjoint(after.validation.index)
        assert after.validation[cfg.resolved_target].nunique() == 2
    pooled = data.pooled_evaluation(held)
    assert len(pooled) == sum(len(c.validation) for c in split)
