"""FedTrimmedAvg: the coordinate-wise trimmed mean of the client models.

For every weight k the floor(beta * n) lowest and highest of the n client
values are dropped and the rest averaged (example counts ignored), so up to
floor(beta * n) attackers on each side cannot move it. Clients only train and
return their weights.
"""

from __future__ import annotations

from typing import Any

from flwr.server.strategy import FedTrimmedAvg

from fedapp.errors import UsageError
from fedapp.registry import STATELESS, Param, StrategyPlugin


def _build(common: dict[str, Any], params: dict[str, Any]) -> FedTrimmedAvg:
    if not params["beta"] < 0.5:
        raise UsageError(f"--beta must be in [0, 0.5), got {params['beta']}")
    return FedTrimmedAvg(**common, beta=params["beta"])


plugin = StrategyPlugin(
    name="fedtrimmedavg",
    summary="Flower's FedTrimmedAvg: per weight, drop the floor(beta*n) lowest and "
    "highest client values and average the rest.",
    build=_build,
    state=STATELESS,
    params=(Param("beta", float, 0.2, "Fraction cut from each end, in [0, 0.5).", minimum=0.0),),
)
