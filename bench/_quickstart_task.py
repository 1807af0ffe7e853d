"""Benchmark child (c), client side: a Keras client as Flower's quickstart-tensorflow writes it.

Flower's ``examples/quickstart-tensorflow`` builds and compiles a fresh model
in every ``client_fn`` call (i.e. for every message: each fit and each
evaluate of each round), then uses ``model.fit`` / ``model.evaluate``. Here
the model is fedapp's MLP (hidden ReLU layers, sigmoid output, Adam, binary
cross-entropy) and the data are fedapp's clients' rows with the federated
preprocessing, so that only the way the client is written differs from
``fedapp simulate``.

This module is imported by name (never run as ``__main__``) so that Ray
actors unpickle its functions by reference and keep :func:`load_data`'s
per-process cache, like the example's module-level ``fds`` cache. Caching the
transformed arrays is, if anything, kinder to this client than the example,
which re-loads its partition on every call.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

import keras
import numpy as np
from flwr.client import Client, ClientApp, NumPyClient
from flwr.common import Context, NDArrays, Scalar

from fedapp import data, registry
from fedapp.data.stats import Preprocessor
from fedapp.settings import RunConfig

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def load_model(
    n_features: int, hidden_units: Sequence[int] = (64, 32), learning_rate: float = 0.001
) -> keras.Model:
    """Build and compile the MLP, as the example's ``task.load_model`` does.

    Parameters
    ----------
    n_features : int
        Input width.
    hidden_units : Sequence[int]
        Widths of the ReLU layers.
    learning_rate : float
        Adam's learning rate.

    Returns
    -------
    keras.Model
        A compiled ``Sequential`` model (binary cross-entropy, accuracy metric).

    """
    model = keras.Sequential(
        [
            keras.Input(shape=(n_features,)),
            *(keras.layers.Dense(units, activation="relu") for units in hidden_units),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


@functools.cache
def load_data(cfg_json: str, prep_json: str, partition_id: int) -> Arrays:
    """One client's ``(x_train, y_train, x_test, y_test)``, cached per process.

    Parameters
    ----------
    cfg_json : str
        The run config, ``json.dumps(cfg.to_dict())``.
    prep_json : str
        The federated preprocessing, ``Preprocessor.to_json()``.
    partition_id : int
        Which client.

    Returns
    -------
    Arrays
        ``prep.transform`` of the client's training and held-out rows.

    """
    cfg = RunConfig.from_mapping(json.loads(cfg_json))
    prep = Preprocessor.from_json(prep_json)
    rows = data.client_share(cfg, partition_id)
    x_train, y_train = prep.transform(rows.train)
    x_test, y_test = prep.transform(rows.test)
    return x_train, y_train, x_test, y_test


class FlowerClient(NumPyClient):
    """The example's client: ``set_weights``, then ``model.fit`` or ``model.evaluate``.

    Parameters
    ----------
    model : keras.Model
        A freshly built and compiled model.
    arrays : Arrays
        The client's training and test arrays.
    epochs : int
        Local epochs per fit.
    batch_size : int
        Mini-batch size.

    """

    def __init__(self, model: keras.Model, arrays: Arrays, epochs: int, batch_size: int) -> None:
        self.model = model
        self.x_train, self.y_train, self.x_test, self.y_test = arrays
        self.epochs = epochs
        self.batch_size = batch_size

    def get_parameters(self, config: dict[str, Scalar]) -> NDArrays:
        """Return the model's weights."""
        return self.model.get_weights()

    def fit(
        self, parameters: NDArrays, config: dict[str, Scalar]
    ) -> tuple[NDArrays, int, dict[str, Scalar]]:
        """Train the global weights on this client's rows."""
        self.model.set_weights(parameters)
        self.model.fit(
            self.x_train, self.y_train, epochs=self.epochs, batch_size=self.batch_size, verbose=0
        )
        return self.model.get_weights(), len(self.x_train), {}

    def evaluate(
        self, parameters: NDArrays, config: dict[str, Scalar]
    ) -> tuple[float, int, dict[str, Scalar]]:
        """Score the global weights on this client's held-out rows."""
        self.model.set_weights(parameters)
        loss, accuracy = self.model.evaluate(self.x_test, self.y_test, verbose=0)
        return float(loss), len(self.x_test), {"accuracy": float(accuracy)}


def client_fn(context: Context, cfg_json: str, prep_json: str) -> Client:
    """Clear Keras' session, build a fresh model and wrap it in a client (per message).

    Parameters
    ----------
    context : Context
        Flower's context; ``node_config["partition-id"]`` names the client.
    cfg_json : str
        The run config as JSON.
    prep_json : str
        The federated preprocessing as JSON.

    Returns
    -------
    Client
        The NumPy client, converted.

    """
    cfg = RunConfig.from_mapping(json.loads(cfg_json))
    arrays = load_data(cfg_json, prep_json, int(context.node_config["partition-id"]))
    keras.backend.clear_session()
    # The example's own network is the MLP, with the run's widths.
    widths = registry.get_model("mlp").resolve(cfg.model_params)["hidden-units"]
    model = load_model(arrays[0].shape[1], widths, cfg.learning_rate)
    return FlowerClient(model, arrays, cfg.local_epochs, cfg.batch_size).to_client()


def make_client_app(cfg: RunConfig, prep: Preprocessor) -> ClientApp:
    """The ClientApp for ``cfg`` and ``prep``.

    Parameters
    ----------
    cfg : RunConfig
        The run's settings.
    prep : Preprocessor
        The federated preprocessing.

    Returns
    -------
    ClientApp
        An app whose ``client_fn`` is :func:`client_fn` bound to both, as strings.

    """
    cfg_json = json.dumps(cfg.to_dict(), sort_keys=True)
    prep_json = prep.to_json()

    def bound_client_fn(context: Context) -> Client:
        """Flower's ``client_fn(context)`` signature."""
        return client_fn(context, cfg_json, prep_json)

    return ClientApp(client_fn=bound_client_fn)
