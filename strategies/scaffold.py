"""SCAFFOLD: FedAvg whose clients correct their drift with control variates.

Karimireddy et al. 2020, "SCAFFOLD: Stochastic Controlled Averaging for
Federated Learning". Under non-IID data each client's local steps drift
towards its own optimum; SCAFFOLD steps on ``g - c_i + c`` instead of ``g``,
where ``c_i`` estimates the client's own mean gradient and ``c`` the
federation's, so that every client follows the federation's gradient.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from flwr.common import FitRes, NDArrays, Parameters, Scalar, parameters_to_ndarrays
from flwr.server.client_proxy import ClientProxy

from fedapp.learning import drift
from fedapp.registry import Param, StrategyPlugin, attributes_state
from fedapp_strategies.weighted import WeightedFedAvg, client_coefficients


def server_control(
    control: NDArrays, deltas: list[NDArrays], clients: int, weights: np.ndarray
) -> NDArrays:
    """``c <- c + (|S| / N) * sum_i a_i Δc_i`` over the round's ``|S|`` clients of ``N``.

    ``weights`` are the round's ``a_i``, summing to 1 (``1 / |S|`` each: the
    paper's mean). With every client's ``c_i`` starting at 0 and every
    client in every round, this keeps ``c = sum_i a_i c_i``: the control
    variate of the objective the server's update descends. With sampling it
    is that sum's estimate from the round's clients.
    """
    share = len(deltas) / clients
    return [
        (c + share * sum(a * d[k] for a, d in zip(weights, deltas, strict=True))).astype(c.dtype)
        for k, c in enumerate(control)
    ]


class Scaffold(WeightedFedAvg):
    """SCAFFOLD with option II control variates and a server learning rate.

    Each round, with ``x`` the global weights and ``c`` the server's control
    variate, client i takes ``K`` plain SGD steps of size ``eta_l``::

        y_i <- y_i - eta_l * (g_i(y_i) - c_i + c)       K times, from y_i = x
        c_i+ = c_i - c + (x - y_i) / (K * eta_l)        (option II)

    and the server, over the round's clients S of the federation's N::

        x <- x + eta_g * sum_i a_i (y_i - x)
        c <- c + (|S| / N) * sum_i a_i (c_i+ - c_i)

    ``weighting`` sets the means' weights ``a_i``. ``examples`` (the
    default) weighs each client by its training rows, ``n_i / sum_S n``:
    SCAFFOLD then descends the pooled rows' loss, the objective the
    centralized baseline and the global test set measure. ``uniform`` is the
    paper's unweighted mean, the mean of the institutions' own losses. Both
    means, of the updates and of ``Δc_i``, take the same ``a_i``, so that
    ``c`` stays the control variate of the objective being descended. With
    one client ``c = c_i``, the correction is zero and this is plain local SGD.

    Why plain SGD: option II reads the mean corrected gradient off the
    weights, ``(x - y_i) / (K * eta_l)``, which is exact for K steps of size
    ``eta_l``; with Adam (fedapp's clients otherwise) each step is a
    rescaled gradient and the estimate would be wrong. So SCAFFOLD's clients
    step with ``local-learning-rate`` (sent in the fit config), not with
    Adam at the run's ``--learning-rate``.

    Client obligation: step as above when the fit config carries
    ``fedapp-scaffold-c`` (``c``, float32 values packed as one ``bytes``,
    :func:`fedapp.learning.drift.pack`) and ``fedapp-scaffold-learning-rate``;
    keep ``c_i`` between rounds; return its weights as ever and
    ``fedapp-scaffold-delta-c`` (``c_i+ - c_i``, packed) in the fit metrics.
    fedapp's client does, keeping ``c_i`` in its node state.

    Under record-level DP the clients' steps are DP-SGD's noised gradients
    plus the correction; ``c_i`` and ``c_i+ - c_i`` are computed from ``c``
    and from weights the client sends anyway, so they cost no privacy.
    """

    # Read before a run starts (fedapp.flower.run_setup.check_features): the
    # run settings SCAFFOLD cannot honour, and why.
    refuses: ClassVar[dict[str, str]] = {
        "--secure-aggregation": "SecAgg+ only sums the weights, so the control variates "
        "cannot travel masked (in clear they would reveal each client's update)",
        "--dp central": "central DP clips and noises the weights alone; the control "
        "variates would carry each client's update unclipped and without noise",
    }

    def __init__(
        self,
        *,
        local_learning_rate: float,
        server_learning_rate: float = 1.0,
        weighting: str = "examples",
        **kwargs: Any,
    ) -> None:
        super().__init__(server_learning_rate=server_learning_rate, policy=weighting, **kwargs)
        self.local_learning_rate = local_learning_rate
        self.control: NDArrays | None = None

    def __repr__(self) -> str:
        return (
            f"Scaffold(eta_l={self.local_learning_rate}, eta_g={self.server_learning_rate}, "
            f"weighting={self.policy})"
        )

    def fit_config(self) -> dict[str, Scalar]:
        """``c`` (zeros before round 1) and the local step size, for every client."""
        if self.control is None:
            assert self._current is not None, "configure_fit sets the round's weights first"
            self.control = [np.zeros_like(w, dtype=np.float32) for w in self._current]
        return {
            drift.SCAFFOLD_CONTROL_KEY: drift.pack(self.control),
            drift.SCAFFOLD_LEARNING_RATE_KEY: self.local_learning_rate,
        }

    def coefficients(self, results: list[tuple[ClientProxy, FitRes]]) -> np.ndarray:
        """The weighting's ``a_i`` over the clients that trained; 0 for one of no rows.

        A client of no rows sends no update and no ``Δc_i``: under ``uniform``
        it would otherwise take a share of both means.
        """
        examples = [res.num_examples for _, res in results]
        trained = np.asarray(examples) > 0
        alphas = np.zeros(len(results))
        if trained.any():
            alphas[trained] = client_coefficients(
                # Partition ids matter to the custom policy alone, which SCAFFOLD lacks.
                self.policy,
                [n for n in examples if n > 0],
                [0] * int(trained.sum()),
            )
        return alphas

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Step the global weights and ``c`` by the round's mean updates.

        Raises
        ------
        RuntimeError
            For a trained result without ``fedapp-scaffold-delta-c``: a client
            that did not run SCAFFOLD's steps.

        """
        alphas = self.coefficients(results)
        trained = alphas > 0
        deltas = [_delta_c(res) for (_, res), t in zip(results, trained, strict=True) if t]
        aggregated = super().aggregate_fit(server_round, results, failures)
        if aggregated[0] is not None and deltas:
            assert self.control is not None
            self.control = server_control(
                self.control, deltas, self.min_available_clients, alphas[trained]
            )
        return aggregated


def _delta_c(res: FitRes) -> NDArrays:
    if drift.SCAFFOLD_DELTA_KEY not in res.metrics:
        raise RuntimeError(
            f"a client ({res.metrics.get('partition-id', '?')}) sent no "
            f"'{drift.SCAFFOLD_DELTA_KEY}': it did not run SCAFFOLD's steps"
        )
    blob = res.metrics[drift.SCAFFOLD_DELTA_KEY]
    assert isinstance(blob, bytes)
    return drift.unpack(blob, parameters_to_ndarrays(res.parameters))


def _build(common: dict[str, Any], params: dict[str, Any]) -> Scaffold:
    return Scaffold(
        **common,
        local_learning_rate=params["local-learning-rate"],
        server_learning_rate=params["server-learning-rate"],
        weighting=params["weighting"],
    )


plugin = StrategyPlugin(
    name="scaffold",
    summary="SCAFFOLD: clients take plain SGD steps on g - c_i + c (control variates); "
    "x += eta_g * sum_i a_i (y_i - x).",
    build=_build,
    state=attributes_state("control"),
    params=(
        Param(
            "local-learning-rate", float, 0.1,
            "Clients' plain-SGD step eta_l, > 0 (used instead of Adam's --learning-rate).",
            greater_than=0.0,
        ),
        Param("server-learning-rate", float, 1.0, "Server learning rate eta_g.", minimum=0.0),
        Param(
            "weighting", str, "examples",
            "The means' weights: examples (n_i, the pooled rows' loss) or uniform (the "
            "paper's, the institutions' mean loss).",
            choices=("examples", "uniform"),
        ),
    ),
)  # fmt: skip
