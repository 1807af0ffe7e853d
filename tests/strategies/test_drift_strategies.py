"""SCAFFOLD and FedNova: their aggregation by hand, and SCAFFOLD's fixed point on a toy.

The toy federations drive fedapp's own client step (:func:`fedapp.learning.model.train`
with :class:`fedapp.flower.drift.ScaffoldRound`) and the plugins' aggregation
directly, in process: no Ray, no Flower server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from unittest.mock import MagicMock

import keras
import numpy as np
import pytest
from flwr.common import (
    Code,
    FitRes,
    NDArrays,
    RecordDict,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from typer.testing import CliRunner

from fedapp import registry
from fedapp.cli import app
from fedapp.flower.drift import ScaffoldRound
from fedapp.flower.run_setup import common_kwargs
from fedapp.learning import drift
from fedapp.learning.model import build_model, train
from fedapp.registry import ModelPlugin
from fedapp.settings import RunConfig
from fedapp_strategies.fednova import normalised_coefficients
from fedapp_strategies.scaffold import server_control

Toy = tuple[np.ndarray, np.ndarray]


def _fit_res(weights: NDArrays, examples: int, pid: int, **metrics) -> FitRes:
    return FitRes(
        status=Status(Code.OK, ""),
        parameters=ndarrays_to_parameters(weights),
        num_examples=examples,
        metrics={"partition-id": pid, **metrics},
    )


def _manager(clients: int) -> MagicMock:
    manager = MagicMock()
    manager.num_available.return_value = clients
    manager.sample.return_value = [MagicMock() for _ in range(clients)]
    return manager


def _strategy(name: str, clients: int, start: NDArrays, **params):
    plugin = registry.get(name)
    cfg = RunConfig(clients=clients)
    return plugin.build(common_kwargs(cfg, ndarrays_to_parameters(start)), plugin.resolve(params))


def _aggregate(strategy, start: float, results: list[FitRes]) -> np.ndarray:
    strategy.configure_fit(1, ndarrays_to_parameters([np.full(3, start)]), _manager(len(results)))
    params, _ = strategy.aggregate_fit(1, [(MagicMock(), r) for r in results], [])
    return parameters_to_ndarrays(params)[0]


# --- FedNova -------------------------------------------------------------------


def test_fednova_with_equal_steps_is_fedavg() -> None:
    # Prepare: three clients of different sizes, each took 7 local steps
    clients = [(0.3, 100), (1.7, 40), (-2.0, 260)]
    results = [
        _fit_res([np.full(3, v)], n, pid, **{"local-steps": 7})
        for pid, (v, n) in enumerate(clients)
    ]

    # Execute
    nova = _aggregate(_strategy("fednova", 3, [np.zeros(3)]), 5.0, results)
    fedavg = _aggregate(_strategy("fedavg", 3, [np.zeros(3)]), 5.0, results)

    # Assert
    expected = (0.3 * 100 + 1.7 * 40 - 2.0 * 260) / 400
    np.testing.assert_allclose(nova, fedavg, rtol=1e-6)
    np.testing.assert_allclose(nova, np.full(3, expected), rtol=1e-6)


def test_fednova_normalises_each_update_by_its_steps() -> None:
    # Prepare: x = 1; y_1 = 3 after 10 steps on 100 rows, y_2 = 5 after 2 steps on 300
    results = [
        _fit_res([np.full(3, 3.0)], 100, 0, **{"local-steps": 10}),
        _fit_res([np.full(3, 5.0)], 300, 1, **{"local-steps": 2}),
    ]

    # Execute
    new = _aggregate(_strategy("fednova", 2, [np.zeros(3)]), 1.0, results)

    # Assert: p = (1/4, 3/4); d = 1/4 * (1 - 3)/10 + 3/4 * (1 - 5)/2 = -1.55;
    # tau_eff = 1/4 * 10 + 3/4 * 2 = 4; x = 1 - 4 * (-1.55) = 7.2 (FedAvg: 4.5)
    np.testing.assert_allclose(new, np.full(3, 7.2), rtol=1e-6)
    np.testing.assert_allclose(normalised_coefficients([100, 300], [10, 2]), [0.1, 1.5])


def test_fednova_asks_for_the_steps_and_needs_them() -> None:
    # Prepare
    strategy = _strategy("fednova", 2, [np.zeros(3)])
    manager = _manager(2)

    # Execute
    chosen = strategy.configure_fit(1, ndarrays_to_parameters([np.zeros(3)]), manager)

    # Assert: every client is asked; an answer without its steps is an error
    assert all(ins.config[drift.LOCAL_STEPS_QUERY] is True for _, ins in chosen)
    results = [(MagicMock(), _fit_res([np.ones(3)], 10, 0))]
    with pytest.raises(RuntimeError, match="reported no 'local-steps'"):
        strategy.aggregate_fit(1, results, [])


# --- SCAFFOLD: the server's arithmetic ---------------------------------------


def test_scaffold_server_update_by_hand() -> None:
    # Prepare: x = 1, c = 0; 2 of N = 4 clients answer, one more trained on no rows
    strategy = _strategy(
        "scaffold", 4, [np.zeros(2)], **{"server-learning-rate": 0.5, "weighting": "uniform"}
    )
    strategy.configure_fit(1, ndarrays_to_parameters([np.ones(2)]), _manager(4))
    deltas = [np.array([2.0, -4.0], np.float32), np.array([6.0, 0.0], np.float32)]
    results = [
        _fit_res([np.full(2, 3.0)], 10, 0, **{drift.SCAFFOLD_DELTA_KEY: drift.pack([deltas[0]])}),
        _fit_res([np.full(2, 7.0)], 99, 1, **{drift.SCAFFOLD_DELTA_KEY: drift.pack([deltas[1]])}),
        _fit_res([np.ones(2)], 0, 2),
    ]

    # Execute
    params, _ = strategy.aggregate_fit(1, [(MagicMock(), r) for r in results], [])

    # Assert: x = 1 + 0.5 * mean(2, 6) = 3 (unweighted, the idle client left out);
    # c = 0 + (2/4) * mean(deltas) = (2, -1)
    np.testing.assert_allclose(parameters_to_ndarrays(params)[0], [3.0, 3.0])
    np.testing.assert_allclose(strategy.control[0], [2.0, -1.0])
    np.testing.assert_allclose(
        server_control([np.ones(1)], [[np.ones(1)]], 2, np.ones(1))[0], [1.5]
    )


def test_scaffold_weighs_by_examples_by_default_in_both_means() -> None:
    # Prepare: x = 1, c = 0; 2 of N = 4 clients answer, with 10 and 30 rows
    strategy = _strategy("scaffold", 4, [np.zeros(2)])
    strategy.configure_fit(1, ndarrays_to_parameters([np.ones(2)]), _manager(4))
    deltas = [np.array([2.0, -4.0], np.float32), np.array([6.0, 0.0], np.float32)]
    results = [
        _fit_res([np.full(2, 3.0)], 10, 0, **{drift.SCAFFOLD_DELTA_KEY: drift.pack([deltas[0]])}),
        _fit_res([np.full(2, 7.0)], 30, 1, **{drift.SCAFFOLD_DELTA_KEY: drift.pack([deltas[1]])}),
    ]

    # Execute
    params, _ = strategy.aggregate_fit(1, [(MagicMock(), r) for r in results], [])

    # Assert: x = 1 + (1/4 * 2 + 3/4 * 6) = 6;
    # c = (2/4) * (1/4 * (2, -4) + 3/4 * (6, 0)) = (2.5, -0.5)
    np.testing.assert_allclose(parameters_to_ndarrays(params)[0], [6.0, 6.0])
    np.testing.assert_allclose(strategy.control[0], [2.5, -0.5])


def test_scaffold_sends_c_and_the_step_size_and_needs_the_delta() -> None:
    # Prepare
    strategy = _strategy("scaffold", 2, [np.zeros(3)], **{"local-learning-rate": 0.2})
    strategy.control = [np.arange(3, dtype=np.float32)]

    # Execute
    chosen = strategy.configure_fit(1, ndarrays_to_parameters([np.zeros(3)]), _manager(2))

    # Assert: the weights travel unchanged, c and eta_l in the config beside them
    for _, ins in chosen:
        np.testing.assert_array_equal(parameters_to_ndarrays(ins.parameters)[0], np.zeros(3))
        sent = drift.unpack(ins.config[drift.SCAFFOLD_CONTROL_KEY], [np.zeros(3)])
        np.testing.assert_array_equal(sent[0], [0.0, 1.0, 2.0])
        assert ins.config[drift.SCAFFOLD_LEARNING_RATE_KEY] == 0.2
    with pytest.raises(RuntimeError, match="did not run SCAFFOLD's steps"):
        strategy.aggregate_fit(1, [(MagicMock(), _fit_res([np.ones(3)], 5, 0))], [])


def test_control_variates_pack_to_bytes_and_back() -> None:
    # Prepare
    arrays = [np.arange(6, dtype=np.float32).reshape(2, 3), np.array([-1.5], np.float32)]

    # Execute
    blob = drift.pack(arrays)

    # Assert
    back = drift.unpack(blob, arrays)
    assert isinstance(blob, bytes) and len(blob) == 7 * 4
    for a, b in zip(arrays, back, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="do not fit a model of 6 weights"):
        drift.unpack(blob, arrays[:1])


# --- SCAFFOLD against FedAvg on a toy federation ---------------------------------

K, LR = 10, 0.5  # local full-batch steps per round, and their step size


def _logistic(n_features: int, output, params, seed: int) -> keras.Model:
    inputs = keras.Input(shape=(n_features,))
    return keras.Model(inputs, keras.layers.Dense(1, kernel_initializer="zeros")(inputs))


@pytest.fixture
def logistic(register_model) -> Callable[[], keras.Model]:
    """Logistic regression (one dense unit, fedapp's sigmoid head), from zero weights."""
    register_model(ModelPlugin("toy-logistic", "Logistic regression.", _logistic))
    return lambda: build_model(2, model="toy-logistic", seed=0)


def _skewed(rng: np.random.Generator, scale: list[float], w: list[float], b: float) -> Toy:
    x = (rng.normal(size=(200, 2)) * scale).astype(np.float32)
    y = (rng.random(200) < 1 / (1 + np.exp(-(x @ np.asarray(w) + b)))).astype(np.float32)
    return x, y


@pytest.fixture(scope="module")
def opposite_skew() -> list[Toy]:
    """Two clients, one mostly positive and one mostly negative, of different curvature."""
    rng = np.random.default_rng(0)
    return [
        _skewed(rng, [2.0, 0.5], [2.0, -1.0], 3.0),
        _skewed(rng, [0.5, 2.0], [-1.0, 2.0], -3.0),
    ]


def _pooled_optimum(clients: list[Toy], mean_of_clients: bool = False) -> np.ndarray:
    """The minimiser of the pooled rows' mean cross-entropy (Newton's method): w_1, w_2, b.

    ``mean_of_clients``: of the mean of the clients' own mean cross-entropies instead.
    """
    x = np.concatenate([np.c_[x, np.ones(len(x))] for x, _ in clients]).astype(np.float64)
    y = np.concatenate([y for _, y in clients]).astype(np.float64)
    r = np.concatenate([np.full(len(c[1]), 1 / len(c[1]) if mean_of_clients else 1.0)
                        for c in clients])  # fmt: skip
    r /= r.sum()
    theta = np.zeros(3)
    for _ in range(50):
        p = 1 / (1 + np.exp(-x @ theta))
        hessian = (x * (r * p * (1 - p))[:, None]).T @ x
        theta -= np.linalg.solve(hessian, x.T @ (r * (p - y)))
    return theta


def _federate(strategy, model: keras.Model, clients: list[Toy], rounds: int) -> NDArrays:
    """``rounds`` rounds of ``strategy`` over clients stepping as fedapp's client does.

    Each client keeps its own node state between rounds. Under SCAFFOLD it
    steps on the corrected gradient; under any other strategy on the plain one,
    with the same plain SGD (so the only difference is the correction).
    """
    manager = _manager(len(clients))
    states = [RecordDict() for _ in clients]
    current = strategy.initialize_parameters(manager)
    for server_round in range(1, rounds + 1):
        results = []
        chosen = strategy.configure_fit(server_round, current, manager)
        for pid, ((proxy, ins), (x, y)) in enumerate(zip(chosen, clients, strict=True)):
            start = parameters_to_ndarrays(ins.parameters)
            scaffold = ScaffoldRound.of(ins.config, start, states[pid])
            model.set_weights(start)
            train(
                model, x, y, epochs=K, batch_size=len(y), seed=[0, server_round, pid],
                correction=scaffold.correction if scaffold else [np.zeros_like(w) for w in start],
                sgd_learning_rate=scaffold.learning_rate if scaffold else LR,
            )  # fmt: skip
            end = model.get_weights()
            metrics = {}
            if scaffold is not None:
                steps = drift.local_steps(len(y), len(y), K)
                metrics = scaffold.finish(start, end, steps, states[pid])
            results.append((proxy, _fit_res(end, len(y), pid, **metrics)))
        current, _ = strategy.aggregate_fit(server_round, results, [])
    return parameters_to_ndarrays(current)


def _flat(weights: NDArrays) -> np.ndarray:
    return np.concatenate([w.ravel() for w in weights]).astype(np.float64)


def test_scaffold_reaches_the_pooled_optimum_where_fedavg_stays_biased(
    logistic, opposite_skew
) -> None:
    # Prepare
    model = logistic()
    start = model.get_weights()
    optimum = _pooled_optimum(opposite_skew)
    scaffold = _strategy("scaffold", 2, start, **{"local-learning-rate": LR})
    fedavg = _strategy("fedavg", 2, start)

    # Execute
    corrected = _flat(_federate(scaffold, model, opposite_skew, rounds=15))
    drifted = _flat(_federate(fedavg, model, opposite_skew, rounds=15))

    # Assert: FedAvg's fixed point is off by the clients' drift; SCAFFOLD's is the optimum
    assert np.linalg.norm(corrected - optimum) < 1e-3
    assert np.linalg.norm(drifted - optimum) > 0.05


@pytest.mark.parametrize("weighting", ["examples", "uniform"])
def test_scaffold_reaches_the_optimum_its_weighting_names_on_clients_of_unequal_size(
    logistic, opposite_skew, weighting: str
) -> None:
    # Prepare: the second client keeps a quarter of its rows
    model = logistic()
    start = model.get_weights()
    (x0, y0), (x1, y1) = opposite_skew
    clients = [(x0, y0), (x1[:50], y1[:50])]
    pooled = _pooled_optimum(clients)
    mean_of_clients = _pooled_optimum(clients, mean_of_clients=True)
    strategy = _strategy(
        "scaffold", 2, start, **{"local-learning-rate": LR, "weighting": weighting}
    )

    # Execute
    found = _flat(_federate(strategy, model, clients, rounds=20))

    # Assert: examples -> the pooled rows' optimum; uniform -> the paper's mean of the clients'
    target, other = (pooled, mean_of_clients)
    if weighting == "uniform":
        target, other = other, target
    assert np.linalg.norm(found - target) < 1e-3
    assert np.linalg.norm(found - other) > 0.05


def test_with_one_client_scaffold_is_plain_local_training(logistic, opposite_skew) -> None:
    # Prepare: one client, so c = c_i and the correction is zero every round
    model = logistic()
    start = model.get_weights()
    x, y = opposite_skew[0]
    x, y = x[:150], y[:150]
    strategy = _strategy("scaffold", 1, start, **{"local-learning-rate": LR})

    # Execute
    federated = _federate(strategy, model, [(x, y)], rounds=3)
    model.set_weights(start)
    for server_round in range(1, 4):
        zero = [np.zeros_like(w) for w in start]
        train(
            model, x, y, epochs=K, batch_size=len(y), seed=[0, server_round, 0],
            correction=zero, sgd_learning_rate=LR,
        )  # fmt: skip
    local = model.get_weights()

    # Assert
    for a, b in zip(federated, local, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert np.linalg.norm(_flat(local) - _flat(start)) > 0.1  # it did train


def test_fedapp_strategies_lists_both() -> None:
    # Execute
    result = CliRunner().invoke(app, ["strategies", "--json"])

    # Assert
    listing = {p["name"]: p for p in json.loads(result.stdout)}
    assert [p["name"] for p in listing["scaffold"]["params"]] == [
        "local-learning-rate", "server-learning-rate", "weighting",
    ]  # fmt: skip
    assert listing["fednova"]["params"] == [] and "tau_i" in listing["fednova"]["summary"]
