"""Krum: the one client model closest to its n - f - 2 nearest neighbours.

score(i) = sum over the n - f - 2 models w_j nearest w_i of ||w_i - w_j||^2;
the new global model is the w_i of lowest score. With at most f malicious of
n >= 2f + 3 clients the choice is provably close to an honest model. Clients
only train and return their weights (example counts are ignored).
"""

from __future__ import annotations

from typing import Any

from flwr.server.strategy import Krum

from fedapp.registry import STATELESS, StrategyPlugin
from fedapp_strategies._byzantine import MALICIOUS, check_tolerance, sampled


def _build(common: dict[str, Any], params: dict[str, Any]) -> Krum:
    f = params["num-malicious-clients"]
    check_tolerance("krum", f, sampled(common), per_f=2, extra=3)
    return Krum(**common, num_malicious_clients=f, num_clients_to_keep=0)


plugin = StrategyPlugin(
    name="krum",
    summary="Flower's Krum: the w_i minimising the sum of squared distances to its "
    "n - f - 2 nearest w_j; needs n >= 2f + 3.",
    build=_build,
    state=STATELESS,
    params=(MALICIOUS,),
)
