"""Bulyan: Krum selection followed by a coordinate-wise trimmed mean around the median.

theta = n - 2f models are picked by applying Krum repeatedly (each pick leaves
the pool); then for every weight the beta = theta - 2f values closest to the
selection's median are averaged. Needs n >= 4f + 3. Clients only train and
return their weights (example counts are ignored).
"""

from __future__ import annotations

from typing import Any

from flwr.server.strategy import Bulyan

from fedapp.registry import STATELESS, StrategyPlugin
from fedapp_strategies._byzantine import MALICIOUS, check_tolerance, sampled


def _build(common: dict[str, Any], params: dict[str, Any]) -> Bulyan:
    f = params["num-malicious-clients"]
    # Flower refuses n < 4f + 3 only when the first round is aggregated.
    check_tolerance("bulyan", f, sampled(common), per_f=4, extra=3)
    # The first rule must return one client's model (Krum, not MultiKrum): Bulyan
    # looks the chosen model up among the clients' to remove it from the pool.
    return Bulyan(**common, num_malicious_clients=f, to_keep=0)


plugin = StrategyPlugin(
    name="bulyan",
    summary="Flower's Bulyan: pick theta = n - 2f models by repeated Krum, then per "
    "weight average the n - 4f values closest to their median; needs n >= 4f + 3.",
    build=_build,
    state=STATELESS,
    params=(MALICIOUS,),
)
