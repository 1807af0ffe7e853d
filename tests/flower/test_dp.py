"""Differential privacy in Flower: the DP wrappers and mods, a client's budget in its node state."""

from __future__ import annotations

from unittest.mock import MagicMock

import numpy as np
import pytest
from flwr.client.mod import fixedclipping_mod
from flwr.common import (
    Code,
    FitRes,
    RecordDict,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAvg,
)

from fedapp import data
from fedapp.flower import dp
from fedapp.flower.client_app import PREPROCESSING_KEY, ROUND_KEY, ChurnClient, build_client_app
from fedapp.flower.client_manager import SeededClientManager
from fedapp.learning.model import build_model
from fedapp.protection import privacy
from fedapp.settings import RunConfig


# -- Flower's wrappers and the client mod ------------------------------------
def test_central_dp_wraps_any_strategy_in_flowers_wrapper() -> None:
    cfg = RunConfig(clients=10, clients_per_round=4, dp="central", noise_multiplier=0.7,
                    clip_norm=0.3)  # fmt: skip
    server = dp.wrap_strategy(FedAvg(), cfg).strategy
    assert isinstance(server, DifferentialPrivacyServerSideFixedClipping)
    assert (server.noise_multiplier, server.clipping_norm, server.num_sampled_clients) == (
        0.7, 0.3, 4,
    )  # fmt: skip
    client = dp.wrap_strategy(FedAvg(), cfg.replace(dp_clipping="client")).strategy
    assert isinstance(client, DifferentialPrivacyClientSideFixedClipping)
    assert dp.client_mods(cfg.replace(dp_clipping="client")) == [fixedclipping_mod]
    assert dp.client_mods(cfg) == []
    plain = FedAvg()
    assert dp.wrap_strategy(plain, RunConfig()) is plain
    assert dp.client_mods(RunConfig()) == []


def test_client_side_clipping_is_the_innermost_mod() -> None:
    # Innermost: it clips the plain update before SecAgg+ (outermost) masks it.
    mods = build_client_app(RunConfig(dp="central", dp_clipping="client"))._mods
    assert mods[-1] is fixedclipping_mod and len(mods) == 2
    assert fixedclipping_mod not in build_client_app(RunConfig(dp="central"))._mods


def test_flower_app_clips_only_when_its_run_config_asks() -> None:
    (mod,) = dp.client_mods(None)
    passed: list[object] = []

    class Ctx:
        run_config = {"dp": "central", "dp-clipping": "server"}

    reply = mod("message", Ctx(), lambda msg, ctxt: passed.append(msg) or "reply")
    assert (reply, passed) == ("reply", ["message"])
    Ctx.run_config = {"dp": "central", "dp-clipping": "client"}
    with pytest.raises(AttributeError):  # handed to fixedclipping_mod, which reads the message
        mod("message", Ctx(), lambda msg, ctxt: "reply")


def _fit_res(values: list[float], examples: int, **metrics) -> FitRes:
    return FitRes(
        status=Status(Code.OK, ""),
        parameters=ndarrays_to_parameters([np.array(values, dtype=np.float32)]),
        num_examples=examples,
        metrics=metrics,
    )


def test_central_dp_averages_clients_with_equal_weights() -> None:
    # Prepare: no noise, a clip norm no update reaches; sizes 1 and 99.
    cfg = RunConfig(clients=2, dp="central", dp_clipping="client", noise_multiplier=0.0,
                    clip_norm=100.0)  # fmt: skip
    strategy = dp.wrap_strategy(FedAvg(), cfg)
    results = [(None, _fit_res([1.0, 1.0], 1)), (None, _fit_res([3.0, 3.0], 99))]

    # Execute
    aggregated, _ = strategy.aggregate_fit(1, results, [])

    # Assert: the plain mean (2, 2), not the example-weighted 2.98.
    assert aggregated is not None
    np.testing.assert_allclose(parameters_to_ndarrays(aggregated)[0], [2.0, 2.0])
    assert [r.num_examples for _, r in results] == [1, 99]  # the caller's results untouched


@pytest.mark.parametrize("clipping", ["server", "client"])
def test_central_dp_divides_by_the_sampled_clients_when_some_failed(clipping: str) -> None:
    # Prepare: 3 sampled from the global (0, 0); one fails; no noise, clip norm 1.
    cfg = RunConfig(clients=3, dp="central", dp_clipping=clipping, noise_multiplier=0.0,
                    clip_norm=1.0)  # fmt: skip
    strategy = dp.wrap_strategy(FedAvg(), cfg)
    current = ndarrays_to_parameters([np.zeros(2)])
    manager = SeededClientManager(0)
    for cid in "abc":
        manager.register(MagicMock(cid=cid))
    strategy.configure_fit(1, current, manager)
    # Updates of norm 1 (already clipped by a client, or within the server's clip).
    results = [(None, _fit_res([0.6, 0.8], 10)), (None, _fit_res([0.0, 1.0], 10))]

    # Execute: Flower's wrapper alone would discard the round over the failure.
    aggregated, _ = strategy.aggregate_fit(1, results, [RuntimeError("lost")])

    # Assert: (u1 + u2) / 3, the fixed denominator m = 3, not the mean of the two.
    assert aggregated is not None
    np.testing.assert_allclose(parameters_to_ndarrays(aggregated)[0], [0.2, 0.6])


def test_central_dp_noise_stays_calibrated_for_the_sampled_clients_when_some_failed() -> None:
    # Prepare: m = 4 sampled, 2 fail; z = 1, C = 1: the noise's std must stay z*C/m = 0.25.
    cfg = RunConfig(clients=4, dp="central", noise_multiplier=1.0, clip_norm=1.0)
    strategy = dp.wrap_strategy(FedAvg(), cfg)
    size = 20_000
    current = ndarrays_to_parameters([np.zeros(size)])
    manager = SeededClientManager(0)
    for cid in "abcd":
        manager.register(MagicMock(cid=cid))
    strategy.configure_fit(1, current, manager)
    # Small updates of one value each: a constant shift, which leaves the spread to the noise.
    results = [(None, _fit_res([1e-3] * size, 1)), (None, _fit_res([1e-3] * size, 1))]

    # Execute
    aggregated, _ = strategy.aggregate_fit(1, results, [RuntimeError("a"), RuntimeError("b")])

    # Assert: the sample std of 20,000 draws is within 3 % of 0.25 (not 0.5 = z*C/k)
    assert aggregated is not None
    assert parameters_to_ndarrays(aggregated)[0].std() == pytest.approx(0.25, rel=0.03)


# -- record-level DP: budgets -------------------------------------------------
def test_record_budget_counts_rounds_in_the_node_state() -> None:
    cfg = RunConfig(dp="record", noise_multiplier=1.0, batch_size=20)
    accountant = privacy.record_accountant(cfg, rows=200)
    budget_cfg = cfg.replace(target_epsilon=accountant.epsilon(2))
    state = RecordDict()
    budget = dp.record_budget(budget_cfg, 200, state)
    assert budget.rounds == 0 and budget.can_train()
    budget.spend_round()
    dp.save_budget(budget, state)
    assert budget.metrics() == {
        privacy.EPSILON_KEY: accountant.epsilon(1),
        privacy.SPENT_KEY: False,
    }
    # A new budget object over the same state (the next message) sees the spent round.
    again = dp.record_budget(budget_cfg, 200, state)
    assert again.rounds == 1 and again.can_train()
    again.spend_round()
    assert not again.can_train()
    assert again.metrics()[privacy.SPENT_KEY] is True


def test_spent_client_declines_to_train_but_still_evaluates(small_cfg: RunConfig) -> None:
    cfg = small_cfg.replace(dp="record", noise_multiplier=1.2, clip_norm=1.0)
    rows = len(data.client_share(cfg, 0).train)
    cfg = cfg.replace(target_epsilon=privacy.record_accountant(cfg, rows).epsilon(1))
    prep = data.federated_preprocessor(cfg)
    config = {PREPROCESSING_KEY: prep.to_json(), ROUND_KEY: 1}
    start = build_model(prep.n_features, params=cfg.model_params, seed=0).get_weights()
    state = RecordDict()

    weights, examples, metrics = ChurnClient(cfg, 0, state=state).fit(start, config)
    assert examples == rows
    assert any(not np.array_equal(a, b) for a, b in zip(weights, start, strict=True))
    assert metrics[privacy.EPSILON_KEY] == pytest.approx(cfg.target_epsilon)
    assert metrics[privacy.SPENT_KEY] is True

    config[ROUND_KEY] = 2
    weights, examples, metrics = ChurnClient(cfg, 0, state=state).fit(start, config)
    assert examples == 0
    assert all(np.array_equal(a, b) for a, b in zip(weights, start, strict=True))
    assert metrics[privacy.EPSILON_KEY] == pytest.approx(cfg.target_epsilon)
    assert "train-loss" not in metrics
    _, examples, _ = ChurnClient(cfg, 0, state=state).evaluate(start, config)
    assert examples > 0
