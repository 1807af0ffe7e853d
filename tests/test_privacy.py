"""Differential privacy: accountants, Flower's wrappers, client budgets, end to end."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import dp_accounting
import numpy as np
import pytest
from dp_accounting import pld, rdp
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
from fedapp.errors import UsageError
from fedapp.flower import dp
from fedapp.flower.client_app import PREPROCESSING_KEY, ROUND_KEY, ChurnClient, build_client_app
from fedapp.learning.model import build_model
from fedapp.protection import privacy
from fedapp.settings import RunConfig


# -- accountants ------------------------------------------------------------
def test_epsilon_grows_with_rounds_and_shrinks_with_noise() -> None:
    cfg = RunConfig(clients=100, clients_per_round=10, dp="central", noise_multiplier=1.0)
    curve = [privacy.central_accountant(cfg).epsilon(r) for r in range(0, 21)]
    assert curve[0] == 0
    assert all(a < b for a, b in itertools.pairwise(curve))
    by_noise = [privacy.epsilon(z, 0.1, 20, 1e-5) for z in (0.8, 1.0, 1.5, 3.0, 10.0)]
    assert all(a > b for a, b in itertools.pairwise(by_noise))
    assert privacy.epsilon(0.0, 0.1, 1, 1e-5) == float("inf")


def test_record_epsilon_matches_dp_accountings_own_computation() -> None:
    # Prepare: 800 rows, batch 32 -> q = 0.04 and 25 steps per epoch; 2 epochs, 5 rounds.
    cfg = RunConfig(dp="record", noise_multiplier=1.1, batch_size=32, local_epochs=2)
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(0.04, dp_accounting.GaussianDpEvent(1.1)), 250
    )
    by_rdp = rdp.RdpAccountant()
    by_rdp.compose(event)
    by_pld = pld.PLDAccountant()
    by_pld.compose(event)

    # Execute
    eps = privacy.record_accountant(cfg, rows=800).epsilon(5)

    # Assert: the RDP accountant's number, an upper bound of the tighter PLD one.
    assert eps == pytest.approx(by_rdp.get_epsilon(1e-5), rel=1e-9)
    assert by_pld.get_epsilon(1e-5) <= eps <= 1.5 * by_pld.get_epsilon(1e-5)


def test_central_epsilon_is_gaussian_composition_when_all_clients_take_part() -> None:
    cfg = RunConfig(clients=3, dp="central", noise_multiplier=2.0, delta=1e-6)
    expected = rdp.RdpAccountant()
    expected.compose(dp_accounting.GaussianDpEvent(2.0), 7)
    assert privacy.central_accountant(cfg).epsilon(7) == pytest.approx(expected.get_epsilon(1e-6))


def test_last_within_finds_the_last_affordable_round() -> None:
    assert privacy.last_within(lambda r: 0.5 * r, 2.0, 10) == 4
    assert privacy.last_within(lambda r: 0.5 * r, 2.0, 3) == 3
    assert privacy.last_within(lambda r: 0.5 * r, 0.1, 10) == 0
    assert privacy.last_within(lambda r: 0.5 * r, 2.2, 10_000) == 4


def test_planned_rounds_stop_before_the_round_that_would_exceed_the_budget() -> None:
    cfg = RunConfig(clients=10, rounds=40, dp="central", noise_multiplier=2.0, target_epsilon=5)
    rounds, reason = privacy.planned_rounds(cfg)
    accountant = privacy.central_accountant(cfg)
    assert 1 <= rounds < 40 and reason == privacy.BUDGET_REACHED
    assert accountant.epsilon(rounds) <= 5 < accountant.epsilon(rounds + 1)
    # A budget that covers every round does not shorten the run.
    assert privacy.planned_rounds(cfg.replace(rounds=2)) == (2, None)
    assert privacy.planned_rounds(cfg.replace(target_epsilon=None)) == (40, None)


def test_a_budget_below_one_round_is_refused() -> None:
    cfg = RunConfig(dp="central", noise_multiplier=1.0, target_epsilon=0.5)
    with pytest.raises(UsageError, match=r"target-epsilon must be >= 4\.7"):
        privacy.check_budget(cfg, [100, 100, 100])
    record = cfg.replace(dp="record", target_epsilon=0.01)
    with pytest.raises(UsageError, match="target-epsilon must be >="):
        privacy.check_budget(record, [200, 300])
    privacy.check_budget(cfg.replace(target_epsilon=5.0), [100])  # one round fits


# -- Flower's wrappers and the client mod ------------------------------------
def test_central_dp_wraps_any_strategy_in_flowers_wrapper() -> None:
    cfg = RunConfig(clients=10, clients_per_round=4, dp="central", noise_multiplier=0.7,
                    clip_norm=0.3)  # fmt: skip
    server = dp.wrap_strategy(FedAvg(), cfg)
    assert isinstance(server, DifferentialPrivacyServerSideFixedClipping)
    assert (server.noise_multiplier, server.clipping_norm, server.num_sampled_clients) == (
        0.7, 0.3, 4,
    )  # fmt: skip
    client = dp.wrap_strategy(FedAvg(), cfg.replace(dp_clipping="client"))
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
    rows = len(data.client_data(cfg, 0).train)
    cfg = cfg.replace(target_epsilon=privacy.record_accountant(cfg, rows).epsilon(1))
    prep = data.federated_preprocessor(cfg)
    config = {PREPROCESSING_KEY: prep.to_json(), ROUND_KEY: 1}
    start = build_model(prep.n_features, cfg.hidden_units, seed=0).get_weights()
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


def test_ledger_keeps_spent_clients_out_and_knows_when_all_are_spent() -> None:
    cfg = RunConfig(clients=2, dp="record", target_epsilon=3.0)
    ledger = privacy.PrivacyLedger(cfg)
    trained = (None, _fit_res([1.0], 50, **{"partition-id": 0, privacy.EPSILON_KEY: 2.5,
                                             privacy.SPENT_KEY: True}))  # fmt: skip
    declined = (None, _fit_res([0.0], 0, **{"partition-id": 1, privacy.EPSILON_KEY: 2.9,
                                             privacy.SPENT_KEY: True}))  # fmt: skip
    assert ledger.admit([trained, declined], "partition-id") == [trained]
    assert ledger.all_spent
    event = ledger.round_event(4)
    assert event["metrics"] == {"epsilon": 2.9, "delta": 1e-5}
    assert event["clients"] == {"0": {"epsilon": 2.5, "spent": True},
                                "1": {"epsilon": 2.9, "spent": True}}  # fmt: skip
    assert ledger.summary()["clients"] == {"0": 2.5, "1": 2.9}
    assert not privacy.PrivacyLedger(cfg.replace(dp="central")).all_spent


# -- end to end -----------------------------------------------------------------
def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_central_dp_stops_cleanly_when_the_budget_is_reached(tmp_path: Path) -> None:
    from fedapp.simulation import simulate

    cfg = RunConfig(clients=3, rounds=3, demo_rows=900, seed=5, baseline=False, dp="central",
                    noise_multiplier=3.0, clip_norm=0.5, target_epsilon=2.2)  # fmt: skip
    accountant = privacy.central_accountant(cfg)
    assert accountant.epsilon(2) <= 2.2 < accountant.epsilon(3)  # the budget pays for 2

    run, summary = simulate(cfg, tmp_path)

    status = json.loads((run.path / "status.json").read_text())
    assert (status["state"], status["round"], status["reason"]) == (
        "finished", 2, "privacy budget reached",
    )  # fmt: skip
    events = _events(run.path)
    spent = [e for e in events if e["stage"] == "privacy"]
    assert [e["round"] for e in spent] == [1, 2]
    assert [e["metrics"]["epsilon"] for e in spent] == pytest.approx(
        [accountant.epsilon(1), accountant.epsilon(2)]
    )
    assert max(e["round"] for e in events) == 2
    saved = json.loads((run.path / "summary.json").read_text())
    assert saved["reason"] == "privacy budget reached" and saved["rounds"] == 2
    assert saved["privacy"]["epsilon"] == pytest.approx(accountant.epsilon(2))
    assert saved["privacy"]["mode"] == "central"
    assert (run.path / "model.keras").is_file()
    assert summary["federated"] == saved["federated"]


@pytest.mark.slow
def test_record_dp_reports_each_clients_epsilon_and_ends_when_all_are_spent(
    tmp_path: Path,
) -> None:
    from fedapp.simulation import simulate

    cfg = RunConfig(clients=3, rounds=3, demo_rows=900, seed=5, baseline=False,
                    partition="iid", dp="record", noise_multiplier=1.0, clip_norm=1.0)  # fmt: skip
    rows = [len(c.train) for c in data.federation(cfg).clients]
    accountants = [privacy.record_accountant(cfg, n) for n in rows]
    # A budget every client can spend on exactly two rounds.
    target = min(a.epsilon(3) for a in accountants) * 0.999
    assert max(a.epsilon(2) for a in accountants) <= target

    run, _ = simulate(cfg.replace(target_epsilon=target), tmp_path)

    events = _events(run.path)
    fits = [e for e in events if e["stage"] == "fit"]
    assert [e["round"] for e in fits] == [1, 2]
    for event in fits:
        assert {pid: c["epsilon"] for pid, c in event["clients"].items()} == pytest.approx(
            {str(i): a.epsilon(event["round"]) for i, a in enumerate(accountants)}
        )
    status = json.loads((run.path / "status.json").read_text())
    assert (status["state"], status["round"], status["reason"]) == (
        "finished", 2, "privacy budget reached",
    )  # fmt: skip
    saved = json.loads((run.path / "summary.json").read_text())
    assert saved["privacy"]["clients"] == pytest.approx(
        {str(i): a.epsilon(2) for i, a in enumerate(accountants)}
    )
