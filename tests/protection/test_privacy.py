"""Differential privacy's accounting, pure: accountants, budgets, the server's ledger and plan."""

from __future__ import annotations

import itertools

import dp_accounting
import pytest
from dp_accounting import pld, rdp

from fedapp.errors import UsageError
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


# -- the server's ledger and round plan -------------------------------------------
def test_ledger_keeps_spent_clients_out_and_knows_when_all_are_spent() -> None:
    # Prepare
    cfg = RunConfig(clients=2, dp="record", target_epsilon=3.0)
    ledger = privacy.PrivacyLedger(cfg)
    trained = {"partition-id": 0, privacy.EPSILON_KEY: 2.5, privacy.SPENT_KEY: True}
    declined = {"partition-id": 1, privacy.EPSILON_KEY: 2.9, privacy.SPENT_KEY: True}

    # Execute
    admitted = [ledger.admit(0, trained, 50), ledger.admit(1, declined, 0)]

    # Assert
    assert admitted == [True, False]
    assert ledger.all_spent
    event = ledger.round_event(4)
    assert event["metrics"] == {"epsilon": 2.9, "delta": 1e-5}
    assert event["clients"] == {"0": {"epsilon": 2.5, "spent": True},
                                "1": {"epsilon": 2.9, "spent": True}}  # fmt: skip
    assert ledger.summary()["clients"] == {"0": 2.5, "1": 2.9}
    assert not privacy.PrivacyLedger(cfg.replace(dp="central")).all_spent


def test_ledger_admits_every_result_without_record_level_dp() -> None:
    # Prepare
    ledger = privacy.PrivacyLedger(RunConfig(clients=2, dp="central"))

    # Execute
    admitted = ledger.admit(0, {"partition-id": 0}, 0)

    # Assert: no ε to note, nothing kept out
    assert admitted is True and ledger.client_epsilon == {}


def test_round_plan_runs_every_round_without_a_budget() -> None:
    # Execute
    plan = privacy.RoundPlan(RunConfig(rounds=3))

    # Assert
    assert (plan.last_round, plan.stop_reason) == (3, None)
    assert plan.includes(3) and not plan.includes(4) and plan.is_last(3)


def test_round_plan_ends_after_the_round_in_which_every_budget_was_spent() -> None:
    # Prepare: both clients report a spent budget in round 2 of 5
    cfg = RunConfig(clients=2, rounds=5, dp="record", target_epsilon=3.0)
    plan, ledger = privacy.RoundPlan(cfg), privacy.PrivacyLedger(cfg)
    ledger.admit(0, {privacy.EPSILON_KEY: 2.5, privacy.SPENT_KEY: True}, 50)
    ledger.admit(1, {privacy.EPSILON_KEY: 2.9, privacy.SPENT_KEY: True}, 50)

    # Execute
    plan.end_if_spent(2, ledger)

    # Assert
    assert (plan.last_round, plan.stop_reason) == (2, privacy.BUDGET_REACHED)
    assert plan.is_last(2) and not plan.includes(3)


def test_round_plan_runs_on_while_a_budget_is_left() -> None:
    # Prepare: one of two clients is spent
    cfg = RunConfig(clients=2, rounds=5, dp="record", target_epsilon=3.0)
    plan, ledger = privacy.RoundPlan(cfg), privacy.PrivacyLedger(cfg)
    ledger.admit(0, {privacy.EPSILON_KEY: 2.5, privacy.SPENT_KEY: True}, 50)
    ledger.admit(1, {privacy.EPSILON_KEY: 1.0, privacy.SPENT_KEY: False}, 50)

    # Execute
    plan.end_if_spent(2, ledger)

    # Assert
    assert (plan.last_round, plan.stop_reason) == (5, None)


def test_round_plan_of_client_level_dp_is_the_rounds_its_budget_pays_for() -> None:
    # Prepare
    cfg = RunConfig(clients=10, rounds=40, dp="central", noise_multiplier=2.0, target_epsilon=5)

    # Execute
    plan = privacy.RoundPlan(cfg)

    # Assert
    assert (plan.last_round, plan.stop_reason) == privacy.planned_rounds(cfg)
    assert plan.last_round < 40 and plan.stop_reason == privacy.BUDGET_REACHED


def test_round_plan_of_an_automatic_run_is_its_round_limit() -> None:
    # Execute
    plan = privacy.RoundPlan(RunConfig(rounds="auto", max_rounds=30))

    # Assert
    assert (plan.last_round, plan.stop_reason) == (30, None)
    assert plan.includes(30) and not plan.includes(31)


def test_round_plan_moves_its_last_round_to_where_the_run_converged() -> None:
    # Prepare
    plan = privacy.RoundPlan(RunConfig(rounds="auto", max_rounds=30))

    # Execute
    plan.end_at(7, "converged at round 5")

    # Assert: round 8 on is idle
    assert (plan.last_round, plan.stop_reason) == (7, "converged at round 5")
    assert plan.is_last(7) and plan.includes(7) and not plan.includes(8)


def test_round_plan_says_why_it_ends_at_its_planned_last_round_but_never_runs_longer() -> None:
    # Prepare
    plan = privacy.RoundPlan(RunConfig(rounds="auto", max_rounds=10))

    # Execute
    plan.end_at(12, "converged at round 9")  # past the plan: changes nothing
    after = (plan.last_round, plan.stop_reason)
    plan.end_at(10, "converged at round 8")

    # Assert
    assert after == (10, None)
    assert (plan.last_round, plan.stop_reason) == (10, "converged at round 8")


def test_the_budget_of_an_automatic_run_is_planned_over_its_round_limit() -> None:
    # Prepare: a budget that pays for fewer rounds than max-rounds
    cfg = RunConfig(clients=10, rounds="auto", max_rounds=40, dp="central",
                    noise_multiplier=2.0, target_epsilon=5)  # fmt: skip
    fixed = cfg.replace(rounds=40, max_rounds=None)

    # Execute
    plan = privacy.RoundPlan(cfg)

    # Assert
    assert (plan.last_round, plan.stop_reason) == privacy.planned_rounds(fixed)
    assert plan.last_round < 40 and plan.stop_reason == privacy.BUDGET_REACHED
