"""FedAdam: Adam on the server, with the round's FedAvg result as the pseudo-gradient.

With w the global model and w_avg the example-weighted mean of the round's
client models, Delta = w_avg - w; m = b1*m + (1-b1)*Delta,
v = b2*v + (1-b2)*Delta^2, and w = w + eta_t * m / (sqrt(v) + tau), eta_t
being eta with Adam's bias correction. Clients only train and return their
weights and example counts.
"""

from __future__ import annotations

from flwr.server.strategy import FedAdam

from fedapp.registry import StrategyPlugin, attributes_state
from fedapp_strategies._fedopt import MOMENTS, builder, server_learning_rate, tau

plugin = StrategyPlugin(
    name="fedadam",
    summary="Flower's FedAdam: Adam step on Delta = w_avg - w with "
    "m = b1*m + (1-b1)*Delta, v = b2*v + (1-b2)*Delta^2.",
    build=builder(FedAdam),
    state=attributes_state("m_t", "v_t"),
    params=(server_learning_rate(0.1), *MOMENTS, tau(1e-3)),
)
