"""The optimiser and Byzantine-robust strategy plugins: registration, parameters, bounds."""

from pathlib import Path
from unittest.mock import MagicMock

import numpy as np
import pytest
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.server.strategy import (
    Bulyan,
    FedAdagrad,
    FedAdam,
    FedMedian,
    FedTrimmedAvg,
    FedYogi,
    Krum,
)
from typer.testing import CliRunner

from fedapp import registry
from fedapp.cli import app
from fedapp.flower.run_setup import common_kwargs
from fedapp.settings import RunConfig
from fedapp_strategies.fedavgm import FedAvgMomentum

runner = CliRunner()
INITIAL = ndarrays_to_parameters([np.zeros((2, 2))])


def _build(name: str, params: dict, clients: int = 10):
    plugin = registry.get(name)
    return plugin.build(common_kwargs(RunConfig(clients=clients), INITIAL), plugin.resolve(params))


@pytest.mark.parametrize(
    ("name", "params", "cls", "attributes"),
    [
        ("fedadam", {"server-learning-rate": "0.05", "beta-1": "0.8", "beta-2": "0.95",
                     "tau": "1e-4"},
         FedAdam, {"eta": 0.05, "beta_1": 0.8, "beta_2": 0.95, "tau": 1e-4}),
        ("fedyogi", {"server-learning-rate": "0.02", "tau": "0.01"},
         FedYogi, {"eta": 0.02, "beta_1": 0.9, "beta_2": 0.99, "tau": 0.01}),
        ("fedadagrad", {"server-learning-rate": "0.3"},
         FedAdagrad, {"eta": 0.3, "beta_1": 0.0, "beta_2": 0.0, "tau": 1e-3}),
        ("fedavgm", {"server-momentum": "0.9"},
         FedAvgMomentum, {"server_learning_rate": 1.0, "server_momentum": 0.9}),
        ("fedmedian", {}, FedMedian, {}),
        ("fedtrimmedavg", {"beta": "0.1"}, FedTrimmedAvg, {"beta": 0.1}),
        ("krum", {"num-malicious-clients": "3"},
         Krum, {"num_malicious_clients": 3, "num_clients_to_keep": 0}),
        ("multikrum", {"num-malicious-clients": "2"},
         Krum, {"num_malicious_clients": 2, "num_clients_to_keep": 8}),
        ("multikrum", {"num-malicious-clients": "2", "num-clients-to-keep": "5"},
         Krum, {"num_malicious_clients": 2, "num_clients_to_keep": 5}),
        ("bulyan", {"num-malicious-clients": "1"},
         Bulyan, {"num_malicious_clients": 1, "aggregation_rule_kwargs": {"to_keep": 0}}),
    ],
)  # fmt: skip
def test_plugin_builds_flower_strategy_with_its_parameters(
    name: str, params: dict, cls: type, attributes: dict
) -> None:
    # Execute: as the CLI does, from strings
    strategy = _build(name, params)
    # Assert: exactly Flower's class, configured, with fedapp's sampling
    assert type(strategy) is cls
    for attribute, value in attributes.items():
        assert getattr(strategy, attribute) == value, attribute
    assert (strategy.min_fit_clients, strategy.min_available_clients) == (10, 10)


def test_all_nine_are_registered_through_entry_points() -> None:
    from importlib.metadata import entry_points

    names = {"fedadam", "fedyogi", "fedadagrad", "fedavgm", "fedmedian", "fedtrimmedavg",
             "krum", "multikrum", "bulyan"}  # fmt: skip
    registered = {ep.name: ep.value for ep in entry_points(group=registry.GROUP)}
    assert names <= set(registered)
    assert all(registered[n] == f"fedapp_strategies.{n}:plugin" for n in names)
    listing = runner.invoke(app, ["strategies"]).stdout
    assert all(n in listing for n in names) and "num-malicious-clients" in listing


def test_server_optimisers_start_from_the_initial_model() -> None:
    # FedOpt steps from its own copy of the model: it must be fedapp's initial weights
    initial = [np.full((2, 2), 0.25)]
    common = common_kwargs(RunConfig(clients=2), ndarrays_to_parameters(initial))
    for name in ("fedadam", "fedyogi", "fedadagrad"):
        plugin = registry.get(name)
        strategy = plugin.build(common, plugin.resolve({}))
        np.testing.assert_array_equal(strategy.current_weights[0], initial[0])


def _results(values: list[float]) -> list:
    return [
        (MagicMock(), FitRes(Status(Code.OK, ""), ndarrays_to_parameters([np.full((2, 2), v)]),
                             10, {"partition-id": i}))
        for i, v in enumerate(values)
    ]  # fmt: skip


@pytest.mark.parametrize("name", ["fedavgm", "fedadam", "fedyogi", "fedadagrad"])
def test_server_optimisers_survive_a_skipped_first_round(name: str) -> None:
    # Prepare: round 1 had too few results and was never aggregated
    strategy = _build(name, {}, clients=2)

    # Execute: round 2 is the first the strategy aggregates, then round 3
    second, _ = strategy.aggregate_fit(2, _results([1.0, 1.0]), [])
    third, _ = strategy.aggregate_fit(3, _results([1.0, 1.0]), [])

    # Assert: both rounds step towards the clients' models, from 0
    assert second is not None and third is not None
    first_step = parameters_to_ndarrays(second)[0]
    assert (first_step > 0).all()
    assert (parameters_to_ndarrays(third)[0] >= first_step).all()


# Six honest models around 1 and one at 100.
VALUES = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 100.0]


@pytest.mark.parametrize(
    ("name", "params", "expected", "tolerance"),
    [
        ("fedmedian", {}, 1.0, 0.0),
        # beta 0.2 of 7 cuts int(1.4) = 1 value at each end: mean(0.95, 1, 1, 1.05, 1.1)
        ("fedtrimmedavg", {"beta": "0.2"}, 1.02, 1e-9),
        # the two models at 1.0 have the smallest sums of distances to their 4 nearest
        ("krum", {"num-malicious-clients": "1"}, 1.0, 0.0),
        # keep 2: the two at 1.0
        ("multikrum", {"num-malicious-clients": "1", "num-clients-to-keep": "2"}, 1.0, 1e-12),
        # n = 7 = 4f + 3: Krum picks 5, then per weight the mean of the 3 closest to their median
        ("bulyan", {"num-malicious-clients": "1"}, 1.0, 0.02),
    ],
)
def test_robust_plugins_ignore_one_outlier(
    name: str, params: dict, expected: float, tolerance: float
) -> None:
    strategy = _build(name, params, clients=7)
    aggregated, _ = strategy.aggregate_fit(1, _results(VALUES), [])
    np.testing.assert_allclose(parameters_to_ndarrays(aggregated)[0], expected, atol=tolerance)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "krum", "--clients", "6", "--num-malicious-clients", "2"],
         "--num-malicious-clients 2 is too many for krum with 6 clients per round: "
         "it needs n >= 2f + 3; allowed range [0, 1]"),
        (["--strategy", "krum", "--clients", "8", "--clients-per-round", "4",
          "--num-malicious-clients", "1"],
         "too many for krum with 4 clients per round"),
        (["--strategy", "multikrum", "--clients", "2"],
         "--num-malicious-clients 0 is too many for multikrum with 2 clients per round: "
         "it needs n >= 2f + 3; allowed range none (too few clients)"),
        (["--strategy", "multikrum", "--clients", "7", "--num-malicious-clients", "1",
          "--num-clients-to-keep", "7"],
         "--num-clients-to-keep 7 is too many with 7 clients per round and "
         "--num-malicious-clients 1: allowed range [1, 6]"),
        (["--strategy", "bulyan", "--clients", "10", "--num-malicious-clients", "2"],
         "--num-malicious-clients 2 is too many for bulyan with 10 clients per round: "
         "it needs n >= 4f + 3; allowed range [0, 1]"),
        (["--strategy", "krum", "--num-malicious-clients", "-1"],
         "--num-malicious-clients must be >= 0"),
        (["--strategy", "fedtrimmedavg", "--beta", "0.5"], "--beta must be in [0, 0.5), got 0.5"),
        (["--strategy", "fedadam", "--beta-1", "1"], "--beta-1 must be in [0, 1), got 1.0"),
        (["--strategy", "fedyogi", "--beta-2", "1.5"], "--beta-2 must be in [0, 1), got 1.5"),
        (["--strategy", "fedadagrad", "--tau", "0"], "--tau must be > 0, got 0.0"),
        (["--strategy", "fedadam", "--server-learning-rate", "-1"],
         "--server-learning-rate must be >= 0"),
        (["--strategy", "fedavgm", "--server-momentum", "1"],
         "--server-momentum must be in [0, 1), got 1.0"),
        (["--strategy", "fedadagrad", "--beta-1", "0.9"],
         "strategy 'fedadagrad' has no parameter --beta-1"),
    ],
)  # fmt: skip
def test_bad_strategy_input_exits_2_before_anything_is_written(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["simulate", "--runs-dir", str(tmp_path / "runs"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
