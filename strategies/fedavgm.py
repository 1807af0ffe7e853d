"""FedAvgM: FedAvg with server momentum on the pseudo-gradient.

g = w - w_avg, m = beta * m + g (m = g in round 1) and w = w - eta * m; with
beta = 0 and eta = 1 it is FedAvg. Clients only train and return their
weights and example counts.
"""

from __future__ import annotations

from typing import Any

from flwr.server.strategy import FedAvgM

from fedapp.errors import UsageError
from fedapp.registry import Param, StrategyPlugin


def _build(common: dict[str, Any], params: dict[str, Any]) -> FedAvgM:
    if not params["server-momentum"] < 1:
        raise UsageError(f"--server-momentum must be in [0, 1), got {params['server-momentum']}")
    # FedAvgM keeps the global model in `initial_parameters` and steps from it.
    return FedAvgM(
        **common,
        server_learning_rate=params["server-learning-rate"],
        server_momentum=params["server-momentum"],
    )


plugin = StrategyPlugin(
    name="fedavgm",
    summary="Flower's FedAvgM: g = w - w_avg, m = beta*m + g, w = w - eta*m.",
    build=_build,
    params=(
        Param("server-learning-rate", float, 1.0, "Server learning rate eta.", minimum=0.0),
        Param("server-momentum", float, 0.5, "Server momentum beta, in [0, 1).", minimum=0.0),
    ),
)
