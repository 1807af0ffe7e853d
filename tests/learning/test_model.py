import warnings

import numpy as np
import pytest

from fedapp.learning.metrics import binary_metrics
from fedapp.learning.model import build_model, evaluate, train
from fedapp.runs import METRIC_NAMES


@pytest.fixture(scope="module")
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 5)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.5, 256) > 0).astype(np.float32)
    return x, y


def _distance(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(np.sqrt(sum(np.sum((u - v) ** 2) for u, v in zip(a, b, strict=True))))


def test_exchanged_weights_are_exactly_the_trainable_model() -> None:
    model = build_model(5, params={"hidden-units": (8, 4)}, seed=0)
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(5, 8), (8,), (8, 4), (4,), (4, 1), (1,)]


def test_proximal_term_pulls_local_weights_to_the_global_ones(xy) -> None:
    x, y = xy
    model = build_model(5, params={"hidden-units": (8,)}, learning_rate=0.05, seed=0)
    start = model.get_weights()
    train(model, x, y, epochs=5, batch_size=16, seed=1, proximal_mu=0.0)
    plain = _distance(model.get_weights(), start)
    model.set_weights(start)
    train(model, x, y, epochs=5, batch_size=16, seed=1, proximal_mu=10.0)
    prox = _distance(model.get_weights(), start)
    assert prox < 0.5 * plain


def test_training_is_reproducible_and_does_not_retrace(xy) -> None:
    x, y = xy
    model = build_model(5, params={"hidden-units": (8,)}, seed=0)
    start = model.get_weights()
    train(model, x, y, epochs=1, batch_size=32, seed=3)
    first = model.get_weights()
    traces = model._fedapp_epoch.experimental_get_tracing_count()
    # New weights, another row count, another mu: the same compiled step.
    model.set_weights(start)
    train(model, x[:100], y[:100], epochs=1, batch_size=32, seed=4, proximal_mu=0.1)
    model.set_weights(start)
    train(model, x, y, epochs=1, batch_size=32, seed=3)
    assert model._fedapp_epoch.experimental_get_tracing_count() == traces == 1
    for a, b in zip(first, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_optimizer_state_does_not_leak_between_fits(xy) -> None:
    x, y = xy
    model = build_model(5, params={"hidden-units": (8,)}, seed=0)
    start = model.get_weights()
    train(model, x[:128], y[:128], epochs=2, batch_size=32, seed=0)  # another client's fit
    model.set_weights(start)
    train(model, x, y, epochs=1, batch_size=32, seed=5)
    fresh = build_model(5, params={"hidden-units": (8,)}, seed=0)
    train(fresh, x, y, epochs=1, batch_size=32, seed=5)
    for a, b in zip(model.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_training_learns(xy) -> None:
    x, y = xy
    model = build_model(5, params={"hidden-units": (8,)}, learning_rate=0.01, seed=0)
    before = evaluate(model, x, y)["loss"]
    train(model, x, y, epochs=10, batch_size=32, seed=0)
    after = evaluate(model, x, y)
    assert after["loss"] < before and after["auc"] > 0.85


def test_binary_metrics_by_hand() -> None:
    m = binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]))
    assert m["auc"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.5)
    expected = -np.mean(np.log([0.9, 0.4, 0.4, 0.9]))
    assert m["loss"] == pytest.approx(expected)
    assert np.isnan(binary_metrics(np.array([1, 1]), np.array([0.2, 0.7]))["auc"])


def test_binary_metrics_full_set_by_hand() -> None:
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.2, 0.6, 0.7, 0.4, 0.9])
    m = binary_metrics(y, p)
    # The keys of the run directory, in display order.
    assert tuple(m) == METRIC_NAMES
    # Ranked: 0.9+ 0.7- 0.6- 0.4+ 0.2-. Positive beats negative in 4 of 6 pairs.
    assert m["auc"] == pytest.approx(4 / 6)
    # Average precision: recall 1/2 at precision 1, then recall 1 at precision 2/4.
    assert m["pr_auc"] == pytest.approx(0.5 * 1 + 0.5 * 0.5)
    # At 0.5: predicted 0 1 1 0 1, so TP 1, FP 2, FN 1, TN 1.
    assert m["accuracy"] == pytest.approx(2 / 5)
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["recall"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert m["loss"] == pytest.approx(-np.mean(np.log([0.8, 0.4, 0.3, 0.4, 0.9])))


def test_binary_metrics_degenerate_cases_are_defined() -> None:
    # No predicted positive: precision, recall and F1 are 0, without a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        none = binary_metrics(np.array([0, 1, 1]), np.array([0.1, 0.2, 0.3]))
        single = binary_metrics(np.array([0, 0]), np.array([0.2, 0.7]))
    assert none["precision"] == none["recall"] == none["f1"] == 0.0
    assert none["accuracy"] == pytest.approx(1 / 3)
    # One class only: the ranking scores are undefined, the thresholded ones are not.
    assert np.isnan(single["auc"]) and np.isnan(single["pr_auc"])
    assert single["accuracy"] == 0.5 and single["precision"] == 0.0
