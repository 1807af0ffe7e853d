"""FedAvg: the example-weighted mean of client models."""

from __future__ import annotations

from typing import Any

from flwr.server.strategy import FedAvg

from fedapp.registry import STATELESS, StrategyPlugin


def _build(common: dict[str, Any], params: dict[str, Any]) -> FedAvg:
    return FedAvg(**common)


plugin = StrategyPlugin(
    name="fedavg",
    summary="Flower's FedAvg: w = sum_i (n_i / n) * w_i over the round's clients.",
    build=_build,
    state=STATELESS,
)
