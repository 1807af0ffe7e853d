"""Strategy maths against hand-computed weights (Prepare / Execute / Assert)."""

from unittest.mock import MagicMock

import numpy as np
import pytest
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import FedAvg

from fedapp import registry
from fedapp_strategies.weighted import WeightedFedAvg, client_coefficients, weighted_update


def _fit_res(weights: list[np.ndarray], examples: int, pid: int) -> FitRes:
    return FitRes(
        status=Status(Code.OK, ""),
        parameters=ndarrays_to_parameters(weights),
        num_examples=examples,
        metrics={"partition-id": pid},
    )


def _results(clients: list[tuple[float, int]]) -> list:
    """One single-layer model per client: (value of every weight, examples)."""
    return [
        (MagicMock(), _fit_res([np.full((2, 2), value)], n, pid))
        for pid, (value, n) in enumerate(clients)
    ]


def test_coefficients_per_policy() -> None:
    np.testing.assert_allclose(client_coefficients("examples", [10, 30], [0, 1]), [0.25, 0.75])
    np.testing.assert_allclose(client_coefficients("uniform", [10, 30], [0, 1]), [0.5, 0.5])
    # custom weights are indexed by partition and renormalised over the round
    np.testing.assert_allclose(
        client_coefficients("custom", [10, 30], [2, 0], custom=(1.0, 5.0, 3.0)), [0.75, 0.25]
    )
    with pytest.raises(ValueError, match="has 2 values but partition 2 took part"):
        client_coefficients("custom", [1, 1], [0, 2], custom=(1.0, 1.0))


def test_weighted_update_by_hand() -> None:
    # Prepare: w_old = 1; clients at 3 and 5 (deltas 2 and 4), alpha = (0.25, 0.75)
    old = [np.ones(3)]
    clients = [[np.full(3, 3.0)], [np.full(3, 5.0)]]
    # Execute: eta = 0.5
    new = weighted_update(old, clients, np.array([0.25, 0.75]), eta=0.5)
    # Assert: 1 + 0.5 * (0.25 * 2 + 0.75 * 4) = 2.75
    np.testing.assert_allclose(new[0], np.full(3, 2.75))


def _aggregate(strategy, start: float, clients: list[tuple[float, int]]) -> np.ndarray:
    manager = MagicMock()
    manager.num_available.return_value = len(clients)
    manager.sample.return_value = []
    strategy.configure_fit(1, ndarrays_to_parameters([np.full((2, 2), start)]), manager)
    params, _ = strategy.aggregate_fit(1, _results(clients), [])
    return parameters_to_ndarrays(params)[0]


def test_eta_one_and_examples_is_fedavg() -> None:
    clients = [(0.3, 100), (1.7, 40), (-2.0, 260)]
    weighted = _aggregate(WeightedFedAvg(server_learning_rate=1.0), 5.0, clients)
    fedavg = _aggregate(FedAvg(), 5.0, clients)
    np.testing.assert_allclose(weighted, fedavg, rtol=1e-6)
    expected = (0.3 * 100 + 1.7 * 40 - 2.0 * 260) / 400
    np.testing.assert_allclose(weighted, np.full((2, 2), expected), rtol=1e-6)


def test_server_learning_rate_and_uniform_policy() -> None:
    # start 1; clients 3 and 7 -> uniform mean delta = 4; eta = 0.25 -> 2
    got = _aggregate(WeightedFedAvg(server_learning_rate=0.25, policy="uniform"), 1.0,
                     [(3.0, 1), (7.0, 99)])  # fmt: skip
    np.testing.assert_allclose(got, np.full((2, 2), 2.0))


def test_fedprox_plugin_sends_mu_to_clients() -> None:
    plugin = registry.get("fedprox")
    strategy = plugin.build({"min_available_clients": 1}, plugin.resolve({"proximal-mu": 0.3}))
    client = MagicMock()
    manager = MagicMock()
    manager.num_available.return_value = 1
    manager.sample.return_value = [client]
    [(_, ins)] = strategy.configure_fit(1, ndarrays_to_parameters([np.zeros(1)]), manager)
    assert ins.config["proximal_mu"] == 0.3


def test_every_built_in_declares_how_its_state_is_checkpointed() -> None:
    undeclared = [name for name, p in registry.installed().items() if p.state is None]
    assert undeclared == []


@pytest.mark.parametrize("name", ["fedadam", "fedyogi", "fedadagrad", "fedavgm"])
def test_a_strategy_restored_from_its_state_steps_as_the_original(name: str) -> None:
    # Prepare: round 1 aggregated; a new strategy from round 1's weights and saved state
    plugin = registry.get(name)
    common = {"initial_parameters": ndarrays_to_parameters([np.zeros((2, 2))])}
    original = plugin.build(common, plugin.resolve({}))
    after_one = _aggregate(original, 0.0, [(1.0, 10), (2.0, 30)])
    assert plugin.state is not None
    saved = plugin.state.save(original)
    common = {"initial_parameters": ndarrays_to_parameters([after_one])}
    restored = plugin.build(common, plugin.resolve({}))
    plugin.state.load(restored, saved)

    # Execute: round 2 on both
    ours = _second_round(restored, after_one)
    theirs = _second_round(original, after_one)

    # Assert
    np.testing.assert_allclose(ours, theirs)
    fresh = plugin.build(common, plugin.resolve({}))
    assert not np.allclose(_second_round(fresh, after_one), theirs)  # the state matters


def _second_round(strategy, start: np.ndarray) -> np.ndarray:
    manager = MagicMock()
    manager.num_available.return_value = 2
    manager.sample.return_value = []
    strategy.configure_fit(2, ndarrays_to_parameters([start]), manager)
    params, _ = strategy.aggregate_fit(2, _results([(3.0, 10), (0.5, 30)]), [])
    return parameters_to_ndarrays(params)[0]
