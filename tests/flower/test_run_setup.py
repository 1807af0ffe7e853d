"""A run's start: the strategy's checks, and what prepare_run leaves when interrupted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flwr.server.strategy import FedAvg

from fedapp.errors import UsageError
from fedapp.flower.run_setup import check_strategy, prepare_run
from fedapp.registry import StrategyPlugin
from fedapp.runs import RunDir
from fedapp.settings import RunConfig


@pytest.mark.parametrize(
    ("raised", "state", "error"),
    [
        (KeyboardInterrupt("SIGTERM"), "stopped", "stopped (SIGTERM)"),
        (OSError("disk gone"), "failed", "OSError: disk gone"),
    ],
)
def test_a_run_interrupted_before_its_first_status_says_how_it_ended(
    small_cfg: RunConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    raised: BaseException,
    state: str,
    error: str,
) -> None:
    # Prepare: the claim is made, then the first status write is interrupted
    def interrupted(_self: RunDir, _rounds: int) -> None:
        raise raised

    monkeypatch.setattr(RunDir, "mark_started", interrupted)
    cfg = small_cfg.replace(run_dir=str(tmp_path / "r"))

    # Execute
    with pytest.raises(type(raised)):
        prepare_run(cfg, tmp_path)

    # Assert: not a directory that looks like a run starting for ever
    status = json.loads((tmp_path / "r" / "status.json").read_text())
    assert (status["state"], status["error"], status["round"]) == (state, error, 0)


def test_a_strategy_refuses_the_settings_it_declares(register_plugin) -> None:
    # Prepare: a third-party strategy that cannot run under record-level DP
    class Picky(FedAvg):
        refuses = {"--dp record": "it needs the clients' plain gradients"}

    register_plugin(StrategyPlugin("picky", "A strategy for this test.", lambda c, p: Picky(**c)))

    # Execute / Assert: refused with its reason; other settings run
    with pytest.raises(
        UsageError, match=r"^strategy 'picky' cannot run with --dp record: it needs"
    ):
        check_strategy(RunConfig(strategy="picky", dp="record"))
    check_strategy(RunConfig(strategy="picky", dp="central"))


def test_scaffold_composes_with_record_level_dp() -> None:
    # Execute / Assert: its clients add the correction to DP-SGD's noised gradient
    check_strategy(RunConfig(strategy="scaffold", dp="record"))
    check_strategy(RunConfig(strategy="fednova", dp="record"))
