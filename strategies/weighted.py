"""Weighted: the textbook server update with a server learning rate and a policy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from flwr.common import (
    FitIns,
    FitRes,
    NDArrays,
    Parameters,
    Scalar,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg

from fedapp.errors import UsageError
from fedapp.registry import STATELESS, Param, StrategyPlugin

POLICIES = ("examples", "uniform", "custom")


def client_coefficients(
    policy: str,
    examples: Sequence[int],
    partitions: Sequence[int],
    custom: Sequence[float] = (),
) -> np.ndarray:
    """The weights alpha_i of the round's clients, summing to 1.

    Parameters
    ----------
    policy : str
        ``examples`` (n_i / N), ``uniform`` (1 / n) or ``custom`` (the user's
        per-partition weights, renormalised over the round's clients).
    examples : Sequence[int]
        Training examples of each client in the round.
    partitions : Sequence[int]
        Partition id of each client in the round (indexes ``custom``).
    custom : Sequence[float]
        One weight per partition, for ``custom``.

    """
    if policy == "examples":
        raw = np.asarray(examples, dtype=np.float64)
    elif policy == "uniform":
        raw = np.ones(len(examples))
    elif policy == "custom":
        if max(partitions) >= len(custom):
            raise ValueError(
                f"client-weights has {len(custom)} values but partition {max(partitions)} took part"
            )
        raw = np.asarray([custom[p] for p in partitions], dtype=np.float64)
    else:
        raise ValueError(f"unknown policy {policy!r}")
    if raw.sum() <= 0:
        raise ValueError("the round's client weights sum to zero")
    return raw / raw.sum()


def weighted_update(
    current: NDArrays, client_weights: Sequence[NDArrays], alphas: np.ndarray, eta: float
) -> NDArrays:
    """``w_new = w_old + eta * sum_i alpha_i * (w_i - w_old)``, layer by layer."""
    return [
        old + eta * sum(a * (w[k] - old) for a, w in zip(alphas, client_weights, strict=True))
        for k, old in enumerate(current)
    ]


class WeightedFedAvg(FedAvg):
    """FedAvg generalised with a server learning rate and a weighting policy.

    Each round, with w the current global model, w_i the model client i
    returns and Delta_i = w_i - w::

        w_new = w + eta * sum_i alpha_i * Delta_i

    where eta is the server learning rate and alpha_i comes from the policy:
    ``examples`` (n_i / N), ``uniform`` (1 / n) or ``custom`` (user weights per
    institution, renormalised over the round's participants). With eta = 1 and
    ``examples`` this is exactly FedAvg.

    Client obligation: report its ``partition-id`` in the fit metrics (fedapp's
    client does) so that ``custom`` weights reach the right institution.
    """

    def __init__(
        self,
        *,
        server_learning_rate: float = 1.0,
        policy: str = "examples",
        client_weights: Sequence[float] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.server_learning_rate = server_learning_rate
        self.policy = policy
        self.client_weights = tuple(client_weights)
        self._current: NDArrays | None = None

    def __repr__(self) -> str:
        return f"WeightedFedAvg(eta={self.server_learning_rate}, policy={self.policy})"

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """Remember the global model the round starts from; add :meth:`fit_config`."""
        self._current = parameters_to_ndarrays(parameters)
        chosen = super().configure_fit(server_round, parameters, client_manager)
        extra = self.fit_config()
        if not extra:
            return chosen
        return [(client, FitIns(ins.parameters, {**ins.config, **extra})) for client, ins in chosen]

    def fit_config(self) -> dict[str, Scalar]:
        """What a subclass adds to every client's fit config (nothing here)."""
        return {}

    def coefficients(self, results: list[tuple[ClientProxy, FitRes]]) -> np.ndarray:
        """The alpha_i of the round's clients, by the policy (a subclass may weigh otherwise)."""
        return client_coefficients(
            self.policy,
            [res.num_examples for _, res in results],
            [int(res.metrics.get("partition-id", i)) for i, (_, res) in enumerate(results)],
            self.client_weights,
        )

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Apply the weighted server update to the round's client models."""
        if not results or (failures and not self.accept_failures):
            return None, {}
        assert self._current is not None, "configure_fit must run first"
        alphas = self.coefficients(results)
        client_models = [parameters_to_ndarrays(res.parameters) for _, res in results]
        new = weighted_update(self._current, client_models, alphas, self.server_learning_rate)
        metrics: dict[str, Scalar] = {}
        if self.fit_metrics_aggregation_fn:
            metrics = self.fit_metrics_aggregation_fn(
                [(res.num_examples, res.metrics) for _, res in results]
            )
        return ndarrays_to_parameters(new), metrics


def _parse_weights(text: str) -> tuple[float, ...]:
    if not text.strip():
        return ()
    try:
        weights = tuple(float(w) for w in text.split(","))
    except ValueError:
        raise UsageError(f"--client-weights must be numbers like 1,2,1; got {text!r}") from None
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise UsageError("--client-weights must be >= 0 and not all zero")
    return weights


def _build(common: dict[str, Any], params: dict[str, Any]) -> WeightedFedAvg:
    weights = _parse_weights(params["client-weights"])
    clients = common.get("min_available_clients", 0)
    if params["policy"] == "custom" and len(weights) != clients:
        raise UsageError(
            f"--policy custom needs --client-weights with one value per client "
            f"({clients}), got {len(weights)}"
        )
    return WeightedFedAvg(
        **common,
        server_learning_rate=params["server-learning-rate"],
        policy=params["policy"],
        client_weights=weights,
    )


plugin = StrategyPlugin(
    name="weighted",
    summary="w_new = w + eta * sum_i alpha_i * (w_i - w), alpha from a policy.",
    build=_build,
    state=STATELESS,
    params=(
        Param("server-learning-rate", float, 1.0, "Server learning rate eta.", minimum=0.0),
        Param(
            "policy", str, "examples",
            "Client weights alpha_i: examples (n_i/N), uniform (1/n), custom.",
            choices=POLICIES,
        ),
        Param(
            "client-weights", str, "",
            "With --policy custom: one weight per client, e.g. 1,2,1 (normalised).",
        ),
    ),
)  # fmt: skip
