"""Label-skew correction: a client trains with its label prior over the federation's."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from fedapp.data.stats import TargetEncoding
from fedapp.errors import UsageError
from fedapp.learning.model import build_model, label_shift_ratio, predict, train
from fedapp.registry import OutputSpec
from fedapp.settings import Task

BINARY = TargetEncoding(Task.BINARY, ("0", "1"), prior=(0.5, 0.5))
THREE = TargetEncoding(Task.MULTICLASS, ("a", "b", "c"), prior=(0.2, 0.3, 0.5))


def test_the_ratio_is_the_clients_smoothed_prior_over_the_federations() -> None:
    # Prepare: 8 of class 0, 0 of class 1 (smoothed by one row each: 9/10 and 1/10)
    y = np.zeros(8)

    # Execute
    ratio = label_shift_ratio(y, BINARY)

    # Assert
    np.testing.assert_allclose(ratio, [0.9 / 0.5, 0.1 / 0.5])


def test_the_ratio_of_a_multiclass_client() -> None:
    # Execute
    ratio = label_shift_ratio(np.array([0, 0, 1, 2, 2, 2, 2]), THREE)

    # Assert: shares (3, 2, 5) / 10 over the prior
    np.testing.assert_allclose(ratio, [0.3 / 0.2, 0.2 / 0.3, 0.5 / 0.5])


@pytest.mark.parametrize(
    "encoding",
    [
        TargetEncoding(Task.REGRESSION, (), 1.0, 2.0),
        TargetEncoding(Task.BINARY, ("0", "1")),  # no prior: written before it was kept
    ],
)
def test_no_ratio_without_classes_and_their_prior(encoding: TargetEncoding) -> None:
    with pytest.raises(UsageError):
        label_shift_ratio(np.zeros(3), encoding)


@pytest.mark.parametrize(
    ("output", "y"),
    [(OutputSpec("binary", 1), [0.0, 1.0, 1.0, 0.0]), (OutputSpec("multiclass", 3), [0, 2, 1, 2])],
)
def test_unit_ratios_give_the_plain_loss(output: OutputSpec, y: list[float]) -> None:
    # Prepare
    model = build_model(4, output=output, label_shift=True)
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 4)), tf.float32)
    y_true = tf.constant(y, tf.float32)
    predicted = model(x)

    # Execute
    shifted = float(model.compute_loss(x, y_true, predicted, training=True))
    plain = float(model.compute_loss(x, y_true, predicted, training=False))

    # Assert
    assert shifted == pytest.approx(plain, rel=1e-5)


def test_only_training_is_shifted() -> None:
    # Prepare: a strong shift
    model = build_model(4, output=OutputSpec("binary", 1), label_shift=True)
    model.label_shift.set(np.array([0.1, 5.0]))
    x = tf.constant(np.random.default_rng(1).normal(size=(6, 4)), tf.float32)
    y = tf.constant([0, 1, 0, 1, 1, 0], tf.float32)
    predicted = model(x)
    reference = build_model(4, output=OutputSpec("binary", 1))

    # Execute
    shifted = float(model.compute_loss(x, y, predicted, training=True))
    scored = float(model.compute_loss(x, y, predicted, training=False))

    # Assert
    assert shifted != pytest.approx(scored, rel=1e-3)
    assert scored == pytest.approx(float(reference.compute_loss(x, y, predicted, training=False)))


@pytest.mark.parametrize("corrected", [False, True])
def test_a_skewed_client_learns_the_federations_base_rate_only_when_corrected(
    corrected: bool,
) -> None:
    # Prepare: features without signal; the client's rows are 90% positive,
    # the federation's 30%
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1000, 3)).astype(np.float32)
    y = (rng.random(1000) < 0.9).astype(np.float32)
    encoding = TargetEncoding(Task.BINARY, ("0", "1"), prior=(0.7, 0.3))
    model = build_model(3, learning_rate=0.01, seed=0, label_shift=corrected)
    if corrected:
        model.label_shift.set(label_shift_ratio(y, encoding))

    # Execute
    train(model, x, y, epochs=15, batch_size=64, seed=0)
    base_rate = float(predict(model, x).mean())

    # Assert: the served model predicts the federation's rate, not the client's
    expected = 0.3 if corrected else 0.9
    assert base_rate == pytest.approx(expected, abs=0.05)


def test_a_multiclass_client_learns_the_federations_prior_when_corrected() -> None:
    # Prepare: features without signal; the client holds mostly class c
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1200, 3)).astype(np.float32)
    y = rng.choice(3, size=1200, p=[0.1, 0.1, 0.8]).astype(np.float32)
    model = build_model(3, 0.01, 0, output=OutputSpec("multiclass", 3), label_shift=True)
    model.label_shift.set(label_shift_ratio(y, THREE))

    # Execute
    train(model, x, y, epochs=15, batch_size=64, seed=0)
    shares = predict(model, x).mean(axis=0)

    # Assert
    np.testing.assert_allclose(shares, THREE.prior, atol=0.05)


def test_a_regression_model_has_no_shift() -> None:
    with pytest.raises(UsageError, match="binary or multiclass"):
        build_model(3, output=OutputSpec("regression", 1), label_shift=True)


def test_dp_sgd_steps_take_the_shifted_loss_too() -> None:
    # Prepare: noise-free DP-SGD, so that the two losses differ only by the shift
    rng = np.random.default_rng(5)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (rng.random(64) < 0.5).astype(np.float32)
    losses = []
    for ratio in ([1.0, 1.0], [0.2, 3.0]):
        model = build_model(3, seed=0, label_shift=True)
        model.label_shift.set(np.array(ratio))

        # Execute
        losses.append(train(model, x, y, epochs=1, batch_size=64, seed=0, clip_norm=100.0))

    # Assert
    assert all(np.isfinite(losses)) and losses[0] != pytest.approx(losses[1], rel=1e-3)
