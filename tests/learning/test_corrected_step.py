"""SCAFFOLD's local step in the compiled train loop: plain SGD on the gradient plus c - c_i."""

import numpy as np
import pytest

from fedapp.learning.model import build_model, train


@pytest.fixture(scope="module")
def xy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, 0] - x[:, 2] + rng.normal(0, 0.5, 64) > 0).astype(np.float32)
    return x, y


def _model():
    return build_model(4, params={"hidden-units": (6,)}, seed=0)


def _step(model, start, x, y, correction, lr=0.1, **dp) -> list[np.ndarray]:
    """One full-batch step from ``start``."""
    model.set_weights(start)
    train(
        model, x, y, epochs=1, batch_size=len(y), seed=0,
        correction=correction, sgd_learning_rate=lr, **dp,
    )  # fmt: skip
    return model.get_weights()


def test_the_correction_shifts_each_step_by_minus_lr_times_it(xy) -> None:
    # Prepare: the same start and batch, with and without a correction
    x, y = xy
    model = _model()
    start = model.get_weights()
    rng = np.random.default_rng(2)
    correction = [rng.normal(size=w.shape).astype(np.float32) for w in start]

    # Execute
    plain = _step(model, start, x, y, [np.zeros_like(w) for w in start])
    corrected = _step(model, start, x, y, correction)

    # Assert: w - lr (g + c) against w - lr g; and plain SGD is not Adam's step
    for p, q, c in zip(plain, corrected, correction, strict=True):
        np.testing.assert_allclose(q - p, -0.1 * c, rtol=1e-4, atol=1e-6)
    model.set_weights(start)
    train(model, x, y, epochs=1, batch_size=len(y), seed=0)
    assert any(not np.allclose(a, b) for a, b in zip(model.get_weights(), plain, strict=True))


def test_corrected_training_does_not_retrace(xy) -> None:
    # Prepare
    x, y = xy
    model = _model()
    start = model.get_weights()
    zero = [np.zeros_like(w) for w in start]
    first = _step(model, start, x, y, zero)
    traces = model._fedapp_scaffold_epoch.experimental_get_tracing_count()

    # Execute: another correction, step size and row count; then the first again
    _step(model, start, x[:40], y[:40], [np.ones_like(w) for w in start], lr=0.3)
    again = _step(model, start, x, y, zero)

    # Assert
    assert model._fedapp_scaffold_epoch.experimental_get_tracing_count() == traces == 1
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_correction_is_added_to_dp_sgds_gradient(xy) -> None:
    # Prepare: DP-SGD with no noise and a clip norm no gradient reaches is plain SGD
    x, y = xy
    model = _model()
    start = model.get_weights()
    correction = [np.full(w.shape, 0.5, np.float32) for w in start]

    # Execute
    plain = _step(model, start, x, y, correction)
    private = _step(model, start, x, y, correction, clip_norm=1e6, noise_multiplier=0.0)

    # Assert
    for a, b in zip(plain, private, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="learning rate > 0"):
        _step(model, start, x, y, correction, lr=0.0)
