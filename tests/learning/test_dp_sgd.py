"""DP-SGD in the Keras client: per-example clipping, noise, and no retrace."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from fedapp.learning.model import (
    NoisyClipping,
    _epoch_function,
    build_model,
    clip_and_noise,
    dp_gradients,
    train,
)


@pytest.fixture
def rows() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 6)).astype(np.float32)
    y = (x[:, 0] - x[:, 1] > 0).astype(np.float32)
    return x, y


def test_clip_and_noise_clips_each_example_over_all_variables() -> None:
    # Prepare: two variables; example 1 has norm 5 across both, example 2 norm 0.5.
    per_example = [tf.constant([[3.0], [0.3]]), tf.constant([[4.0], [0.4]])]
    generator = tf.random.Generator.from_seed(0)

    # Execute
    summed = clip_and_noise(per_example, 1.0, 0.0, generator)

    # Assert: example 1 scaled by 1/5 to (0.6, 0.8), example 2 kept.
    np.testing.assert_allclose([s.numpy() for s in summed], [[0.9], [1.2]], rtol=1e-6)


def test_clip_and_noise_adds_noise_of_multiplier_times_clip_norm() -> None:
    per_example = [tf.zeros([4, 200, 100])]
    noisy = clip_and_noise(per_example, 0.5, 2.0, tf.random.Generator.from_seed(1))[0].numpy()
    assert noisy.shape == (200, 100)
    assert noisy.std() == pytest.approx(1.0, rel=0.03)  # z * C = 2 * 0.5
    assert abs(noisy.mean()) < 0.03


def test_dp_gradient_is_the_mean_of_per_example_clipped_gradients(rows) -> None:
    # Prepare: no noise, a clip norm far below the gradients' norms.
    x, y = rows[0][:8], rows[1][:8]
    model = build_model(6, params={"hidden-units": (4,)}, seed=1)
    model.proximal.set(0.0, model.get_weights())
    model.dp_sgd = NoisyClipping()
    clip = 1e-3
    model.dp_sgd.set(clip, 0.0)
    # One example at a time, the slow obvious way.
    expected = [np.zeros(v.shape, np.float32) for v in model.trainable_variables]
    for i in range(len(x)):
        with tf.GradientTape() as tape:
            loss = tf.keras.losses.binary_crossentropy(y[i : i + 1, None], model(x[i : i + 1]))
        grads = [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]
        norm = np.sqrt(sum(np.sum(g**2) for g in grads))
        assert norm > clip
        scale = min(1.0, clip / norm) / len(x)
        expected = [e + g * scale for e, g in zip(expected, grads, strict=True)]

    # Execute
    gradients, _ = dp_gradients(model, tf.constant(x), tf.constant(y))

    # Assert: equal to the hand computation, so its norm is at most the clip norm.
    for got, want in zip(gradients, expected, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-9)
    total = np.sqrt(sum(np.sum(g.numpy() ** 2) for g in gradients))
    assert total <= clip * (1 + 1e-5)


def test_noise_changes_the_trained_weights(rows) -> None:
    x, y = rows
    model = build_model(6, params={"hidden-units": (8,)}, seed=2)
    start = model.get_weights()

    def trained(noise: float) -> list[np.ndarray]:
        model.set_weights(start)
        train(model, x, y, epochs=1, batch_size=16, seed=0, clip_norm=1.0, noise_multiplier=noise)
        return model.get_weights()

    quiet, quiet_again, noisy = trained(0.0), trained(0.0), trained(1.0)
    assert all(np.array_equal(a, b) for a, b in zip(quiet, quiet_again, strict=True))
    assert any(not np.allclose(a, b) for a, b in zip(quiet, noisy, strict=True))
    assert any(not np.array_equal(a, b) for a, b in zip(start, quiet, strict=True))


def test_dp_training_retraces_nothing_and_exchanges_only_model_weights(rows) -> None:
    x, y = rows
    model = build_model(6, params={"hidden-units": (8,)}, seed=2)
    shapes = [w.shape for w in model.get_weights()]
    for clip, noise, mu in ((1.0, 1.0, 0.0), (0.5, 0.3, 0.1), (2.0, 0.0, 0.0)):
        loss = train(model, x, y, epochs=2, batch_size=16, seed=[1, 2], proximal_mu=mu,
                     clip_norm=clip, noise_multiplier=noise)  # fmt: skip
        assert np.isfinite(loss)
    train(model, x[:40], y[:40], epochs=1, batch_size=32, seed=0, clip_norm=1.0)
    assert _epoch_function(model, private=True).experimental_get_tracing_count() == 1
    assert [w.shape for w in model.get_weights()] == shapes
    assert len(model.trainable_variables) == len(shapes)
