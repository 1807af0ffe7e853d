"""FedNova: FedAvg with each client's update normalised by its local steps.

Wang et al. 2020, "Tackling the Objective Inconsistency Problem in
Heterogeneous Federated Optimization". A client that takes more local steps
moves further; FedAvg then lets it pull the global model towards its own
optimum by more than its share of the examples, so the federation converges
to the optimum of another objective. FedNova averages the per-step updates
instead and rescales by the mean number of steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from flwr.common import FitRes, Scalar
from flwr.server.client_proxy import ClientProxy

from fedapp.learning.drift import LOCAL_STEPS_KEY, LOCAL_STEPS_QUERY
from fedapp.registry import STATELESS, StrategyPlugin
from fedapp_strategies.weighted import WeightedFedAvg, client_coefficients


def normalised_coefficients(examples: Sequence[int], steps: Sequence[int]) -> np.ndarray:
    """FedNova's weight of each client's update ``y_i - x``: ``alpha_i = tau_eff * p_i / tau_i``.

    With ``p_i = n_i / n`` and ``tau_eff = sum_i p_i tau_i``, the new model
    ``x + sum_i alpha_i (y_i - x)`` is ``x - tau_eff * d`` for the normalised
    direction ``d = sum_i p_i (x - y_i) / tau_i``. With equal ``tau_i`` every
    ``alpha_i = p_i``: FedAvg.

    Raises
    ------
    ValueError
        For a step count below 1.

    """
    p = client_coefficients("examples", examples, range(len(examples)))
    tau = np.asarray(steps, dtype=np.float64)
    if (tau < 1).any():
        raise ValueError(f"every client must report at least one local step, got {list(steps)}")
    return float(np.dot(p, tau)) * p / tau


class FedNova(WeightedFedAvg):
    """Normalised averaging: each update divided by its client's local steps tau_i.

    Each round, with ``x`` the global weights and ``y_i`` client i's model
    after ``tau_i`` local steps on its ``n_i`` examples::

        p_i     = n_i / sum_j n_j
        d       = sum_i p_i (x - y_i) / tau_i
        tau_eff = sum_i p_i tau_i
        x      <- x - tau_eff * d

    With equal ``tau_i`` this is FedAvg; it differs when clients take
    different numbers of steps (quantity skew: with the same epochs and
    batch size, a client of more rows takes more steps). FedNova's
    normaliser for plain SGD is ``tau_i`` itself; fedapp's clients step
    with Adam, whose steps have about the learning rate's size whatever the
    gradient, so an update still grows about linearly with its steps and
    ``tau_i`` is the normaliser used.

    Client obligation: when the fit config carries ``fedapp-local-steps``,
    report ``local-steps`` (``tau_i``, an integer) in the fit metrics;
    fedapp's client reports ``epochs * ceil(rows / batch)``.
    """

    # Read before a run starts (fedapp.flower.run_setup.check_features): the
    # run settings FedNova cannot honour, and why.
    refuses: ClassVar[dict[str, str]] = {
        "--secure-aggregation": "SecAgg+ hides each client's update, which FedNova divides "
        "by that client's own local steps",
        "--dp central": "the noise is calibrated for each clipped update moving the mean by "
        "at most C/m, and FedNova rescales client i's by tau_eff/tau_i",
    }

    def __repr__(self) -> str:
        return "FedNova()"

    def fit_config(self) -> dict[str, Scalar]:
        """Ask every client for its local steps."""
        return {LOCAL_STEPS_QUERY: True}

    def coefficients(self, results: list[tuple[ClientProxy, FitRes]]) -> np.ndarray:
        """``tau_eff * p_i / tau_i`` (:func:`normalised_coefficients`).

        Raises
        ------
        RuntimeError
            For a client that trained but reported no ``local-steps``.

        """
        steps = []
        for _, res in results:
            if res.num_examples and LOCAL_STEPS_KEY not in res.metrics:
                raise RuntimeError(
                    f"a client ({res.metrics.get('partition-id', '?')}) reported no "
                    f"'{LOCAL_STEPS_KEY}', which FedNova normalises its update by"
                )
            # A client of no rows (record-level DP, budget spent) weighs 0 whatever its steps.
            steps.append(int(res.metrics.get(LOCAL_STEPS_KEY, 1)))
        return normalised_coefficients([res.num_examples for _, res in results], steps)


def _build(common: dict[str, Any], params: dict[str, Any]) -> FedNova:
    return FedNova(**common)


plugin = StrategyPlugin(
    name="fednova",
    summary="FedNova: x -= tau_eff * sum_i p_i (x - y_i) / tau_i, each update "
    "normalised by its client's local steps tau_i.",
    build=_build,
    state=STATELESS,
)
