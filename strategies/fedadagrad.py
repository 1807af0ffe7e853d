"""FedAdagrad: Adagrad on the server, with the round's FedAvg result as the pseudo-gradient.

Delta = w_avg - w, v = v + Delta^2 and w = w + eta * Delta / (sqrt(v) + tau):
each weight's step shrinks with the updates it has already had. Clients only
train and return their weights and example counts.
"""

from __future__ import annotations

from flwr.server.strategy import FedAdagrad

from fedapp.registry import StrategyPlugin, attributes_state
from fedapp_strategies._fedopt import builder, server_learning_rate, tau

plugin = StrategyPlugin(
    name="fedadagrad",
    summary="Flower's FedAdagrad: v = v + Delta^2, w = w + eta*Delta/(sqrt(v)+tau).",
    build=builder(FedAdagrad),
    state=attributes_state("m_t", "v_t"),
    params=(server_learning_rate(0.03), tau(1e-3)),
)
