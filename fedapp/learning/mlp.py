"""The built-in model: a multilayer perceptron, a model plugin like any third-party one.

Registered through the ``fedapp.models`` entry points (``pyproject.toml``);
fedapp adds the output activation, the loss and the train steps
(:func:`fedapp.learning.model.build_model`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fedapp.registry import ModelPlugin, OutputSpec, Param

if TYPE_CHECKING:
    import keras


def build(n_features: int, output: OutputSpec, params: dict[str, Any], seed: int) -> keras.Model:
    """ReLU layers of ``hidden-units`` widths (each with ``dropout``), then a linear output."""
    # Keras (TensorFlow) only once a model is built: `fedapp models` and `--help` list
    # this plugin without it.
    import keras

    # Seeded initialisers (seed * 1000 + layer) rather than keras.utils.set_random_seed:
    # the same weights for the same seed without resetting the process's global RNGs.
    def init(layer: int) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=seed * 1000 + layer)

    inputs = keras.Input(shape=(n_features,), dtype="float32")
    hidden = inputs
    widths = params["hidden-units"]
    for i, units in enumerate(widths):
        hidden = keras.layers.Dense(units, activation="relu", kernel_initializer=init(i))(hidden)
        if params["dropout"]:
            hidden = keras.layers.Dropout(params["dropout"], seed=seed * 1000 + i)(hidden)
    scores = keras.layers.Dense(output.units, kernel_initializer=init(len(widths)))(hidden)
    return keras.Model(inputs, scores, name="mlp")


plugin = ModelPlugin(
    name="mlp",
    summary="Multilayer perceptron: ReLU dense layers, optionally with dropout.",
    build=build,
    params=(
        Param("hidden-units", int, (64, 32), "Widths of the hidden layers.", minimum=1, many=True),
        Param(
            "dropout", float, 0.0, "Dropout rate after each hidden layer.", minimum=0, less_than=1
        ),
    ),
)
