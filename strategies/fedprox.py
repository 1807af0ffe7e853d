"""FedProx: FedAvg aggregation, with a proximal term in every client's loss."""

from __future__ import annotations

from typing import Any

from flwr.server.strategy import FedProx

from fedapp.registry import STATELESS, Param, StrategyPlugin


def _build(common: dict[str, Any], params: dict[str, Any]) -> FedProx:
    # Flower's FedProx puts `proximal_mu` in each round's fit config; fedapp's
    # client adds (mu / 2) * ||w - w_global||^2 to its loss when it is there.
    return FedProx(**common, proximal_mu=params["proximal-mu"])


plugin = StrategyPlugin(
    name="fedprox",
    summary="Flower's FedProx: clients minimise loss + (mu/2)*||w - w_global||^2.",
    build=_build,
    state=STATELESS,
    params=(
        Param(
            "proximal-mu",
            float,
            0.1,
            "Weight mu of the proximal term (0 is plain FedAvg).",
            minimum=0.0,
        ),
    ),
)
