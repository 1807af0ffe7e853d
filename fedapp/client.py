"""The ClientApp: a Keras ``NumPyClient`` that trains on its own institution's rows.

What leaves a client (the privacy ledger): aggregate statistics of its
training rows (on request, once), model weights, example counts and metrics
tagged with its partition id. Never a row, never an ID.

A client process keeps its compiled model and its prepared arrays between
rounds: the model is built once per process and architecture, and each round
only assigns weights (no rebuild, no retrace).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from flwr.client import Client, ClientApp, NumPyClient
from flwr.common import Context, NDArrays, Scalar

from fedapp import data
from fedapp.config import RunConfig

STATISTICS_QUERY = "fedapp-statistics"
PREPROCESSING_KEY = "fedapp-preprocessing"
ROUND_KEY = "fedapp-round"
PARTITION_KEY = "partition-id"


@dataclass(frozen=True)
class _Arrays:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@functools.lru_cache(maxsize=8)
def _model(n_features: int, hidden_units: tuple[int, ...], learning_rate: float):
    """One compiled model per process and architecture, shared by its clients."""
    from fedapp.model import build_model

    return build_model(n_features, hidden_units, learning_rate)


@functools.lru_cache(maxsize=256)
def _arrays(cfg_json: str, partition_id: int, preprocessing: str) -> _Arrays:
    """This client's rows, transformed once with the federation's preprocessing."""
    cfg = RunConfig.from_mapping(json.loads(cfg_json))
    rows = data.client_data(cfg, partition_id)
    prep = data.Preprocessor.from_json(preprocessing)
    x_train, y_train = prep.transform(rows.train)
    x_test, y_test = prep.transform(rows.test)
    return _Arrays(x_train, y_train, x_test, y_test)


class ChurnClient(NumPyClient):
    """One institution: fits and evaluates the global model on its own rows.

    Parameters
    ----------
    cfg : RunConfig
        The run's settings (local epochs, batch size, ...).
    partition_id : int
        Which institution this is (Flower's ``partition-id`` node config).

    """

    def __init__(self, cfg: RunConfig, partition_id: int) -> None:
        self.cfg = cfg
        self.partition_id = partition_id
        self._cfg_json = json.dumps(cfg.to_dict(), sort_keys=True)

    def get_properties(self, config: dict[str, Scalar]) -> dict[str, Scalar]:
        """Answer the server's statistics query with aggregates of the training rows."""
        if not config.get(STATISTICS_QUERY):
            return {PARTITION_KEY: self.partition_id}
        rows = data.client_data(self.cfg, self.partition_id)
        stats = data.local_statistics(rows.train, rows.schema, self.cfg.min_category_count)
        return {
            PARTITION_KEY: self.partition_id,
            "schema": json.dumps([rows.schema.numeric, rows.schema.categorical]),
            "statistics": json.dumps(stats),
        }

    def fit(
        self, parameters: NDArrays, config: dict[str, Scalar]
    ) -> tuple[NDArrays, int, dict[str, Scalar]]:
        """Train the global weights on local rows for ``local_epochs``.

        With FedProx the round's config carries ``proximal_mu`` and the loss
        gains ``(mu / 2) * ||w - w_global||^2``.
        """
        from fedapp.model import train

        arrays, model = self._prepare(parameters, config)
        loss = train(
            model,
            arrays.x_train,
            arrays.y_train,
            epochs=self.cfg.local_epochs,
            batch_size=self.cfg.batch_size,
            seed=[self.cfg.seed, int(config.get(ROUND_KEY, 0)), self.partition_id],
            proximal_mu=float(config.get("proximal_mu", 0.0)),
        )
        metrics: dict[str, Scalar] = {PARTITION_KEY: self.partition_id, "train-loss": loss}
        return model.get_weights(), len(arrays.y_train), metrics

    def evaluate(
        self, parameters: NDArrays, config: dict[str, Scalar]
    ) -> tuple[float, int, dict[str, Scalar]]:
        """Score the global weights on this client's held-out rows."""
        from fedapp.model import evaluate

        arrays, model = self._prepare(parameters, config)
        metrics = evaluate(model, arrays.x_test, arrays.y_test)
        return metrics["loss"], len(arrays.y_test), {PARTITION_KEY: self.partition_id, **metrics}

    def _prepare(self, parameters: NDArrays, config: dict[str, Any]) -> tuple[_Arrays, Any]:
        arrays = _arrays(self._cfg_json, self.partition_id, str(config[PREPROCESSING_KEY]))
        model = _model(arrays.x_train.shape[1], self.cfg.hidden_units, self.cfg.learning_rate)
        model.set_weights(parameters)
        return arrays, model


def client_fn(context: Context, cfg: RunConfig | None = None) -> Client:
    """Build the client for one message, with ``cfg`` or Flower's run config."""
    if cfg is None:
        cfg = RunConfig.from_mapping(dict(context.run_config), source="run config")
    return ChurnClient(cfg, int(context.node_config[PARTITION_KEY])).to_client()


def build_client_app(cfg: RunConfig | None = None) -> ClientApp:
    """A ClientApp for ``cfg``; without it, settings come from Flower's run config."""

    def for_context(context: Context) -> Client:
        return client_fn(context, cfg)

    return ClientApp(client_fn=for_context)


# The Flower App component (`flwr run`): settings from `[tool.flwr.app.config]`.
app = build_client_app()
