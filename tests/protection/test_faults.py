"""The fault plan: dropouts and stragglers drawn from the seed, the round and the partition."""

import pytest

from fedapp.protection.faults import Fault, FaultPlan


def test_a_plan_without_rates_injects_nothing_and_records_nothing() -> None:
    plan = FaultPlan(seed=1, straggler_rate=0.5, straggler_delay=0.0)
    assert not plan.active
    assert {plan.fault(r, p) for r in range(1, 5) for p in range(5)} == {Fault.NONE}
    assert plan.of_round(1, [0, 1, 2]) == {}


def test_the_same_seed_gives_the_same_faults_and_another_seed_others() -> None:
    # Prepare
    def faults(seed: int) -> list[Fault]:
        plan = FaultPlan(seed, dropout_rate=0.3, straggler_rate=0.3, straggler_delay=1.0)
        return [plan.fault(r, p) for r in range(1, 21) for p in range(10)]

    # Execute / Assert
    assert faults(7) == faults(7)
    assert faults(7) != faults(8)


@pytest.mark.parametrize(("dropout", "straggler"), [(0.1, 0.0), (0.3, 0.2), (0.5, 0.5)])
def test_faults_happen_at_their_rates(dropout: float, straggler: float) -> None:
    # Prepare: 4,000 client-rounds
    plan = FaultPlan(3, dropout_rate=dropout, straggler_rate=straggler, straggler_delay=2.0)
    faults = [plan.fault(r, p) for r in range(1, 201) for p in range(20)]

    # Assert: a straggler is drawn among the clients that did not drop out
    dropped = faults.count(Fault.DROPPED) / len(faults)
    late = faults.count(Fault.LATE) / len(faults)
    assert dropped == pytest.approx(dropout, abs=0.025)
    assert late == pytest.approx((1 - dropout) * straggler, abs=0.025)


def test_the_round_record_names_the_asked_partitions_by_fault() -> None:
    plan = FaultPlan(5, dropout_rate=0.4, straggler_rate=0.4, straggler_delay=1.0)
    asked = [3, None, 0, 7, 5]  # a node whose partition is not known is left out
    record = plan.of_round(4, asked)
    assert record["dropped"] == [p for p in (0, 3, 5, 7) if plan.fault(4, p) is Fault.DROPPED]
    assert record["late"] == [p for p in (0, 3, 5, 7) if plan.fault(4, p) is Fault.LATE]
