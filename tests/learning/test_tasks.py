"""The model of each task: its head, its loss, DP-SGD on it, and its scores by hand."""

from __future__ import annotations

import numpy as np
import pytest

from fedapp.data.stats import TargetEncoding
from fedapp.learning.metrics import multiclass_metrics, regression_metrics, score
from fedapp.learning.model import build_model, evaluate, model_for, predict, train
from fedapp.protection.attacks import flip_labels
from fedapp.runs import metric_names
from fedapp.settings import Task

THREE = TargetEncoding(Task.MULTICLASS, ("a", "b", "c"))
SPEND = TargetEncoding(Task.REGRESSION, (), mean=500.0, std=100.0)


@pytest.fixture(scope="module")
def rows() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    classes = (x[:, 0] > 0.5).astype(int) + (x[:, 1] > 0).astype(int)  # 0, 1, 2
    value = (2 * x[:, 0] - x[:, 2] + rng.normal(0, 0.1, 300)).astype(np.float32)
    return x, classes.astype(np.float32), value


def test_the_head_of_each_task() -> None:
    x = np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32)
    probs = predict(model_for(THREE, 4, 1e-3, params={"hidden-units": (8,)}), x)
    assert probs.shape == (8, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    binary = predict(build_model(4, params={"hidden-units": (8,)}), x)
    assert binary.shape == (8,) and np.all((binary > 0) & (binary < 1))
    value = predict(model_for(SPEND, 4, 1e-3, params={"hidden-units": (8,)}), x)
    # A linear head: values beyond (0, 1) come out unsquashed.
    assert value.shape == (8,) and (value.min() < 0 or value.max() > 1)


@pytest.mark.parametrize("private", [False, True], ids=["sgd", "dp-sgd"])
def test_multiclass_and_regression_models_learn_without_retracing(rows, private: bool) -> None:
    x, classes, value = rows
    dp = {"clip_norm": 5.0, "noise_multiplier": 0.0} if private else {}
    for encoding, y, metric, better in (
        (THREE, classes, "accuracy", lambda before, after: after > before + 0.2),
        (SPEND, value, "loss", lambda before, after: after < 0.5 * before),
    ):
        model = model_for(encoding, 4, 0.02, seed=0, params={"hidden-units": (16,)})
        start = model.get_weights()
        before = evaluate(model, x, y, encoding)[metric]
        train(model, x, y, epochs=8, batch_size=32, seed=1, **dp)
        after = evaluate(model, x, y, encoding)[metric]
        assert better(before, after), (encoding.task, before, after)
        epoch = model._fedapp_dp_epoch if private else model._fedapp_epoch
        model.set_weights(start)
        train(model, x[:50], y[:50], epochs=1, batch_size=32, seed=2, **dp)
        assert epoch.experimental_get_tracing_count() == 1


def test_multiclass_scores_by_hand() -> None:
    # Prepare: 4 rows of classes a, a, b, c; the model gets rows 0, 2 and 3 right.
    y = np.array([0, 0, 1, 2])
    probs = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])

    got = multiclass_metrics(y, probs, ("a", "b", "c"))

    assert got["accuracy"] == pytest.approx(0.75)
    assert got["loss"] == pytest.approx(-np.mean(np.log([0.8, 0.2, 0.8, 0.6])))
    assert got["recall:a"] == pytest.approx(0.5) and got["recall:b"] == got["recall:c"] == 1.0
    # F1 per class: a = 2/3, b = 2/3 (precision 1/2, recall 1), c = 1.
    assert got["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert 0.5 < got["macro_auc"] <= 1.0
    assert set(metric_names("multiclass", got)) == set(got)


def test_regression_scores_are_in_the_targets_units() -> None:
    standard = np.array([-1.0, 0.0, 1.0, 2.0])  # 400, 500, 600, 700
    predicted = np.array([-1.0, 0.5, 1.0, 1.0])  # 400, 550, 600, 600
    got = regression_metrics(standard, predicted, SPEND)
    assert got["rmse"] == pytest.approx(np.sqrt((50**2 + 100**2) / 4))
    assert got["mae"] == pytest.approx(150 / 4)
    assert got["r2"] == pytest.approx(1 - (50**2 + 100**2) / (4 * 100**2 * 1.25))
    assert got["loss"] == pytest.approx((0.25 + 1) / 4)
    assert score(SPEND, standard, predicted) == got


def test_label_flip_per_task() -> None:
    np.testing.assert_array_equal(flip_labels(np.array([0.0, 1.0])), [1.0, 0.0])
    codes = np.array([0.0, 1.0, 2.0], dtype=np.float32)
    flipped = flip_labels(codes, "multiclass", 3)
    # A fixed permutation moving every class: no row keeps its label.
    np.testing.assert_array_equal(flipped, [1.0, 2.0, 0.0])
    assert flipped.dtype == np.float32
    np.testing.assert_array_equal(flip_labels(np.array([0.5, -2.0]), "regression"), [-0.5, 2.0])
