"""FedMedian: the coordinate-wise median of the client models.

w_k = median_i w_ik for every weight k, example counts ignored: one client,
or any minority, cannot drag a weight past the honest majority's values.
Clients only train and return their weights.
"""

from __future__ import annotations

from typing import Any

from flwr.server.strategy import FedMedian

from fedapp.registry import STATELESS, StrategyPlugin


def _build(common: dict[str, Any], params: dict[str, Any]) -> FedMedian:
    return FedMedian(**common)


plugin = StrategyPlugin(
    name="fedmedian",
    summary="Flower's FedMedian: w_k = median_i w_ik for every weight k "
    "(robust while fewer than half the clients are malicious).",
    build=_build,
    state=STATELESS,
)
