"""FedAvgM: FedAvg with server momentum on the pseudo-gradient.

g = w - w_avg, m = beta * m + g (m = g in round 1) and w = w - eta * m; with
beta = 0 and eta = 1 it is FedAvg. Clients only train and return their
weights and example counts.
"""

from __future__ import annotations

from typing import Any

from flwr.common import FitRes, Parameters, Scalar
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvgM

from fedapp.errors import UsageError
from fedapp.registry import Param, StrategyPlugin, attributes_state


class FedAvgMomentum(FedAvgM):
    """Flower's FedAvgM, whose momentum starts at the first round aggregated.

    Flower's asserts a momentum vector from round 2 on; when round 1 was
    skipped (too few results, ``--min-fit-results``) there is none yet, and
    the first round aggregated starts it, as round 1 would have.
    """

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Aggregate as Flower's FedAvgM, from a momentum of ``None`` as in its round 1."""
        first = server_round if self.momentum_vector is not None else 1
        return super().aggregate_fit(first, results, failures)


def _build(common: dict[str, Any], params: dict[str, Any]) -> FedAvgMomentum:
    if not params["server-momentum"] < 1:
        raise UsageError(f"--server-momentum must be in [0, 1), got {params['server-momentum']}")
    # FedAvgM keeps the global model in `initial_parameters` and steps from it.
    return FedAvgMomentum(
        **common,
        server_learning_rate=params["server-learning-rate"],
        server_momentum=params["server-momentum"],
    )


plugin = StrategyPlugin(
    name="fedavgm",
    summary="Flower's FedAvgM: g = w - w_avg, m = beta*m + g, w = w - eta*m.",
    build=_build,
    state=attributes_state("momentum_vector"),
    params=(
        Param("server-learning-rate", float, 1.0, "Server learning rate eta.", minimum=0.0),
        Param("server-momentum", float, 0.5, "Server momentum beta, in [0, 1).", minimum=0.0),
    ),
)
