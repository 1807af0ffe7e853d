"""Differential privacy end to end on the simulation engine: ε per round, the budget's stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedapp import data
from fedapp.protection import privacy
from fedapp.settings import RunConfig
from fedapp.simulation import simulate


def _events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_central_dp_stops_cleanly_when_the_budget_is_reached(tmp_path: Path) -> None:
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
