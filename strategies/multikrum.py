"""MultiKrum: the mean of the m client models with the best Krum scores.

Krum's score(i) as in ``krum``; the new global model is the example-weighted
mean of the m models with the lowest scores, m <= n - f (no more than there
are honest clients). Needs n >= 2f + 3. Clients train and return weights and
example counts.
"""

from __future__ import annotations

from typing import Any

from flwr.server.strategy import Krum

from fedapp.errors import UsageError
from fedapp.registry import STATELESS, Param, StrategyPlugin
from fedapp_strategies._byzantine import MALICIOUS, check_tolerance, sampled


def _build(common: dict[str, Any], params: dict[str, Any]) -> Krum:
    f, n = params["num-malicious-clients"], sampled(common)
    check_tolerance("multikrum", f, n, per_f=2, extra=3)
    # Keeping more than n - f would let an attacker in even when all scores are honest.
    keep = params["num-clients-to-keep"] or n - f
    if keep > n - f:
        raise UsageError(
            f"--num-clients-to-keep {keep} is too many with {n} clients per round and "
            f"--num-malicious-clients {f}: allowed range [1, {n - f}] (0 means {n - f})"
        )
    return Krum(**common, num_malicious_clients=f, num_clients_to_keep=keep)


plugin = StrategyPlugin(
    name="multikrum",
    summary="Flower's Krum with m > 0: the example-weighted mean of the m w_i with the "
    "lowest Krum scores; needs n >= 2f + 3 and m <= n - f.",
    build=_build,
    state=STATELESS,
    params=(
        MALICIOUS,
        Param("num-clients-to-keep", int, 0, "Models m averaged (0 keeps n - f).", minimum=0),
    ),
)
