"""Benchmark child (c): a plain Flower simulation with the quickstart-style client.

Server: Flower's ``FedAvg`` (every client fits and evaluates every round)
with an ``evaluate_fn`` that scores the global model on fedapp's global test
set; initial weights from :func:`fedapp.learning.model.build_model` with the run's
seed, so it starts where ``fedapp simulate`` starts. Clients: see
:mod:`_quickstart_task`. Prints the final round's metrics as one JSON line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from _common import emit, fingerprint, parse_config
from _quickstart_task import make_client_app

from fedapp import data


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulation and print the final global-test metrics.

    Parameters
    ----------
    argv : Sequence[str] | None
        Command-line arguments (``None``: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status (1 if the last round was never evaluated).

    """
    cfg = parse_config(argv, "Benchmark (c): Flower quickstart-style simulation.")
    prep = data.federated_preprocessor(cfg)

    from flwr.common import NDArrays, Scalar, ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.simulation import run_simulation

    from fedapp.learning.metrics import binary_metrics
    from fedapp.learning.model import run_model

    model = run_model(cfg, prep)
    initial = ndarrays_to_parameters(model.get_weights())
    x_test, y_test = prep.transform(data.global_test(cfg))
    history: dict[int, dict[str, float]] = {}

    def evaluate_fn(
        server_round: int, parameters: NDArrays, config: dict[str, Scalar]
    ) -> tuple[float, dict[str, Scalar]]:
        """Score the global model on the global test set; remember the round's metrics."""
        model.set_weights(parameters)
        metrics = binary_metrics(y_test, model.predict(x_test, verbose=0))
        history[server_round] = metrics
        return metrics["loss"], dict(metrics)

    def server_fn(_context: Any) -> ServerAppComponents:
        """FedAvg over all clients every round, with central evaluation."""
        strategy = FedAvg(
            fraction_fit=1.0,
            fraction_evaluate=1.0,
            min_fit_clients=cfg.clients,
            min_evaluate_clients=cfg.clients,
            min_available_clients=cfg.clients,
            evaluate_fn=evaluate_fn,
            initial_parameters=initial,
        )
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=cfg.rounds))

    started = time.perf_counter()
    run_simulation(
        server_app=ServerApp(server_fn=server_fn),
        client_app=make_client_app(cfg, prep),
        num_supernodes=cfg.clients,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": 2, "include_dashboard": False},
        },
    )
    inner = time.perf_counter() - started
    if cfg.rounds not in history:
        sys.stderr.write(f"round {cfg.rounds} was never evaluated (got {sorted(history)})\n")
        return 1
    emit(
        {
            **history[cfg.rounds],
            "rounds": cfg.rounds,
            "inner_seconds": round(inner, 3),
            "preprocessing": fingerprint(prep.to_json()),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
