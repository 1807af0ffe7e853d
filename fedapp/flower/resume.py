"""Resuming a run on Flower's loops, which always count their rounds from 1.

A run resumed after round ``k`` of ``R`` gives Flower ``R - k`` rounds (plus
the closing query's); :class:`ResumedRounds` hands the run strategy Flower's
round ``r`` as the run's round ``r + k``, so that every record, fault plan,
training seed and learning-rate schedule sees the round an unbroken run would.
"""

from __future__ import annotations

from flwr.common import EvaluateIns, EvaluateRes, FitIns, FitRes, Parameters, Scalar
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import Strategy

from fedapp.flower.strategy import RunStrategy


class ResumedRounds(Strategy):
    """The run strategy, its rounds counted on from the checkpoint's.

    Parameters
    ----------
    run : RunStrategy
        The run strategy, restoring its state from its checkpoint.
    done : int
        The rounds the checkpoint had completed.

    """

    def __init__(self, run: RunStrategy, done: int) -> None:
        super().__init__()
        self.run = run
        self.done = done

    def __repr__(self) -> str:
        return f"ResumedRounds({self.run!r}, after round {self.done})"

    def _round(self, flower_round: int) -> int:
        # Round 0 is Flower's evaluation of the initial model: never a run's round.
        return flower_round + self.done if flower_round > 0 else 0

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        """The checkpoint's global weights, after the run strategy's set-up."""
        return self.run.initialize_parameters(client_manager)

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """The run strategy's, at the run's round."""
        return self.run.configure_fit(self._round(server_round), parameters, client_manager)

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """The run strategy's, at the run's round."""
        return self.run.aggregate_fit(self._round(server_round), results, failures)

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        """The run strategy's, at the run's round."""
        return self.run.configure_evaluate(self._round(server_round), parameters, client_manager)

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        """The run strategy's, at the run's round."""
        return self.run.aggregate_evaluate(self._round(server_round), results, failures)

    def evaluate(
        self, server_round: int, parameters: Parameters
    ) -> tuple[float, dict[str, Scalar]] | None:
        """The run strategy's, at the run's round; the initial model was scored before."""
        if server_round == 0:
            return None
        return self.run.evaluate(self._round(server_round), parameters)

    def skip(self, server_round: int, reason: str) -> None:
        """The run strategy's (SecAgg+ giving up on a round), at the run's round."""
        self.run.skip(self._round(server_round), reason)


def run_strategy(strategy: Strategy | None) -> RunStrategy:
    """The run strategy of a server's components, resumed or not."""
    if isinstance(strategy, ResumedRounds):
        return strategy.run
    assert isinstance(strategy, RunStrategy)
    return strategy
