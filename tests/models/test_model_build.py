"""build_model over model plugins: the body a plugin builds, the head and training fedapp owns."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from fedapp.errors import UsageError
from fedapp.learning.evaluation import CentralEvaluator
from fedapp.learning.model import build_model, train
from fedapp.registry import ModelPlugin, OutputSpec

RegisterModel = Callable[[ModelPlugin], Callable[[], None]]

OUTPUTS = [OutputSpec("binary", 1), OutputSpec("multiclass", 4), OutputSpec("regression", 1)]
X = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32) * 3


def _plugin_of(source: str) -> ModelPlugin:
    """The ``plugin`` a plugin module's source declares."""
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(source), namespace)
    return namespace["plugin"]


@pytest.fixture
def resnet(register_model: RegisterModel, resnet_plugin: str) -> str:
    """The README's residual MLP, registered in code."""
    register_model(_plugin_of(resnet_plugin))
    return "my_pkg_resnet"


def _check_head(model: keras.Model, output: OutputSpec) -> None:
    predicted = np.asarray(model.predict_on_batch(X))
    assert predicted.shape == (len(X), output.units)
    if output.task == "binary":
        assert ((predicted > 0) & (predicted < 1)).all()
    elif output.task == "multiclass":
        assert (predicted >= 0).all()
        np.testing.assert_allclose(predicted.sum(axis=1), 1.0, rtol=1e-5)
    else:  # linear: the raw scores, of either sign
        assert (predicted < 0).any() and (predicted > 0).any()


@pytest.mark.parametrize("output", OUTPUTS, ids=lambda o: o.task)
def test_the_mlp_gets_the_head_of_each_task(output: OutputSpec) -> None:
    # Execute
    model = build_model(5, seed=1, params={"hidden-units": (8, 4)}, output=output)

    # Assert
    _check_head(model, output)
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(5, 8), (8,), (8, 4), (4,), (4, output.units), (output.units,)]


@pytest.mark.parametrize("output", OUTPUTS, ids=lambda o: o.task)
def test_a_plugin_model_gets_the_head_of_each_task(resnet: str, output: OutputSpec) -> None:
    # Execute
    model = build_model(5, seed=1, model=resnet, params={"width": 6}, output=output)

    # Assert
    _check_head(model, output)
    # Three dense layers of width 6 (the first and two blocks), then the output's.
    shapes = [w.shape for w in model.get_weights()]
    assert shapes == [(5, 6), (6,), (6, 6), (6,), (6, 6), (6,), (6, output.units), (output.units,)]


def test_the_default_mlp_has_the_weights_of_the_seed_as_before() -> None:
    # Prepare: the fixed MLP fedapp built before models were plugins, layer by layer
    init = keras.initializers.GlorotUniform
    inputs = keras.Input(shape=(5,))
    hidden = keras.layers.Dense(64, activation="relu", kernel_initializer=init(7000))(inputs)
    hidden = keras.layers.Dense(32, activation="relu", kernel_initializer=init(7001))(hidden)
    out = keras.layers.Dense(1, activation="sigmoid", kernel_initializer=init(7002))(hidden)
    before = keras.Model(inputs, out)

    # Execute
    model = build_model(5, seed=7)

    # Assert: reproducible runs stay reproducible
    for got, expected in zip(model.get_weights(), before.get_weights(), strict=True):
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_allclose(model.predict_on_batch(X), before.predict_on_batch(X), rtol=1e-6)


def test_dropout_adds_no_weights_and_trains_with_and_without_dp_sgd() -> None:
    # Prepare
    y = (X[:, 0] > 0).astype(np.float32)
    model = build_model(5, seed=0, params={"hidden-units": (8,), "dropout": 0.5})
    plain = build_model(5, seed=0, params={"hidden-units": (8,)})

    # Execute
    loss = train(model, X, y, epochs=2, batch_size=16, seed=1)
    private = train(model, X, y, epochs=1, batch_size=16, seed=1, clip_norm=1.0)

    # Assert
    assert [w.shape for w in model.get_weights()] == [w.shape for w in plain.get_weights()]
    assert any(isinstance(layer, keras.layers.Dropout) for layer in model.layers[1].layers)
    assert np.isfinite(loss) and np.isfinite(private)


def test_a_plugin_model_trains_with_fedprox_and_dp_sgd_without_retracing(resnet: str) -> None:
    # Prepare
    y = (X[:, 0] > 0).astype(np.float32)
    model = build_model(5, learning_rate=0.01, seed=2, model=resnet)
    start = model.get_weights()

    # Execute
    train(model, X, y, epochs=3, batch_size=16, seed=1, proximal_mu=0.5)
    model.set_weights(start)
    train(model, X[:40], y[:40], epochs=1, batch_size=16, seed=2, proximal_mu=0.1)
    train(model, X, y, epochs=1, batch_size=16, seed=1, clip_norm=1.0, noise_multiplier=0.5)

    # Assert
    assert model._fedapp_epoch.experimental_get_tracing_count() == 1
    assert model._fedapp_dp_epoch.experimental_get_tracing_count() == 1


def _bad_plugin(build: Callable[..., Any]) -> ModelPlugin:
    return ModelPlugin("badnet", "Builds the wrong thing.", build)


def _wide(n_features: int, output: OutputSpec, params: dict, seed: int) -> keras.Model:
    inputs = keras.Input(shape=(n_features,))
    return keras.Model(inputs, keras.layers.Dense(output.units + 2)(inputs))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            _wide,
            r"model 'badnet' must map \(None, 5\) to \(None, 1\) raw scores \(a binary "
            r"output\); it gives \(None, 3\)",
        ),
        (
            lambda n, output, params, seed: keras.layers.Dense(1),
            "model 'badnet' built a Dense, not a keras.Model",
        ),
        (
            lambda n, output, params, seed: 1 / 0,
            "model 'badnet' failed to build: ZeroDivisionError: division by zero",
        ),
        (
            lambda n, output, params, seed: keras.Sequential([keras.Input((n + 1,))]),
            r"model 'badnet' does not take \(None, 5\) inputs: ",
        ),
    ],
    ids=["wrong-shape", "not-a-model", "raises", "wrong-input"],
)
def test_a_plugin_that_builds_the_wrong_model_is_a_usage_error(
    register_model: RegisterModel, build: Callable[..., Any], message: str
) -> None:
    # Prepare
    register_model(_bad_plugin(build))

    # Execute / Assert
    with pytest.raises(UsageError, match=message):
        build_model(5, model="badnet")


def test_an_unknown_model_lists_the_installed_ones() -> None:
    # Execute / Assert
    with pytest.raises(UsageError, match="unknown model 'nope'; installed: mlp"):
        build_model(5, model="nope")


@pytest.mark.parametrize("model", ["mlp", "my_pkg_resnet"])
def test_the_saved_model_loads_in_plain_keras(resnet: str, model: str, tmp_path: Path) -> None:
    # Prepare
    fed = build_model(5, seed=3, model=model, output=OutputSpec("multiclass", 3))
    weights = [w + 0.01 for w in fed.get_weights()]

    # Execute
    CentralEvaluator(fed, None).save(weights, tmp_path / "model.keras")

    # Assert: standard layers only, the head included
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded) is keras.Model or type(loaded).__module__.startswith("keras.")
    fed.set_weights(weights)
    np.testing.assert_allclose(loaded.predict_on_batch(X), fed.predict_on_batch(X), rtol=1e-5)
    np.testing.assert_allclose(loaded.predict_on_batch(X).sum(axis=1), 1.0, rtol=1e-5)


def test_training_with_dropout_is_reproducible_whatever_ran_before() -> None:
    # Prepare: one model shared by the clients of a process, as the client app's cache does
    y = (X[:, 0] > 0).astype(np.float32)
    model = build_model(5, seed=0, params={"hidden-units": (8,), "dropout": 0.5})
    start = model.get_weights()
    train(model, X, y, epochs=1, batch_size=16, seed=[1, 1, 0])
    first = model.get_weights()

    # Execute: another client's fit in between
    model.set_weights(start)
    train(model, X[:30], y[:30], epochs=2, batch_size=16, seed=[1, 1, 1])
    model.set_weights(start)
    train(model, X, y, epochs=1, batch_size=16, seed=[1, 1, 0])

    # Assert
    for a, b in zip(first, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
