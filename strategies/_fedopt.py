"""What the adaptive server optimisers (FedAdam, FedYogi, FedAdagrad) share.

Flower's ``FedOpt`` family treats the round's FedAvg result as a pseudo-
gradient Δ = w_avg - w and takes one optimiser step on the server. Flower also
accepts a client learning rate ``eta_l`` but never sends it to clients; in
fedapp the clients' rate is the run's ``--learning-rate``, so it is not
declared here.

The defaults suit fedapp's clients (Adam at 1e-3, one epoch): tau = 1e-3
rather than Flower's 1e-9 for Adam and Adagrad, which turns the first steps
into eta * sign(Delta) even for weights the clients barely moved; eta as
measured on the bank-churn table (bench/bench_hostile.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flwr.server.strategy import FedOpt

from fedapp.errors import UsageError
from fedapp.registry import Param


def server_learning_rate(default: float) -> Param:
    """Flower's ``eta``, named as the ``weighted`` strategy names its server step."""
    return Param("server-learning-rate", float, default, "Server learning rate eta.", minimum=0.0)


def tau(default: float) -> Param:
    """Flower's ``tau``: keeps the step finite where the second moment is ~0."""
    return Param("tau", float, default, "Adaptivity tau added to sqrt(v) (> 0).", minimum=0.0)


MOMENTS = (
    Param("beta-1", float, 0.9, "First-moment decay beta_1, in [0, 1).", minimum=0.0),
    Param("beta-2", float, 0.99, "Second-moment decay beta_2, in [0, 1).", minimum=0.0),
)


def optimiser_kwargs(params: dict[str, Any]) -> dict[str, float]:
    """Flower's keyword arguments from the declared parameters, range-checked.

    Raises
    ------
    UsageError
        For tau = 0 (a division by zero on the first step) or a beta >= 1.

    """
    if not params["tau"] > 0:
        raise UsageError(f"--tau must be > 0, got {params['tau']}")
    kwargs = {"eta": params["server-learning-rate"], "tau": params["tau"]}
    for name in ("beta-1", "beta-2"):
        if name in params:
            if not params[name] < 1:
                raise UsageError(f"--{name} must be in [0, 1), got {params[name]}")
            kwargs[name.replace("-", "_")] = params[name]
    return kwargs


def builder(cls: type[FedOpt]) -> Callable[[dict[str, Any], dict[str, Any]], FedOpt]:
    """A plugin's ``build`` for one of Flower's ``FedOpt`` subclasses."""

    def build(common: dict[str, Any], params: dict[str, Any]) -> FedOpt:
        # FedOpt keeps its own copy of the global model, seeded by `initial_parameters`.
        return cls(**common, **optimiser_kwargs(params))

    return build
