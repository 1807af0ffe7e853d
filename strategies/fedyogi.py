"""FedYogi: FedAdam with Yogi's sign-controlled second moment (slower to grow).

As FedAdam, except v = v - (1-b2) * Delta^2 * sign(v - Delta^2), which keeps
the effective step from collapsing after one large round. Clients only train
and return their weights and example counts.
"""

from __future__ import annotations

from flwr.server.strategy import FedYogi

from fedapp.registry import StrategyPlugin, attributes_state
from fedapp_strategies._fedopt import MOMENTS, builder, server_learning_rate, tau

plugin = StrategyPlugin(
    name="fedyogi",
    summary="Flower's FedYogi: v = v - (1-b2)*Delta^2*sign(v - Delta^2), "
    "then w = w + eta*m/(sqrt(v)+tau).",
    build=builder(FedYogi),
    state=attributes_state("m_t", "v_t"),
    params=(server_learning_rate(0.1), *MOMENTS, tau(1e-3)),
)
