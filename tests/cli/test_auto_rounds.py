"""``fedapp simulate --rounds auto``: its flags reach the config, bad ones exit 2 with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedapp.cli import app
from fedapp.cli import run as run_command
from fedapp.settings import RunConfig

runner = CliRunner()


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[RunConfig]:
    """The configs ``simulate`` would run (no run starts)."""
    configs: list[RunConfig] = []
    monkeypatch.setattr(
        run_command, "run_simulation", lambda cfg, as_json, verbose: configs.append(cfg)
    )
    return configs


def test_rounds_auto_and_its_settings_reach_the_config(seen: list[RunConfig]) -> None:
    # Execute
    result = runner.invoke(app, [
        "simulate", "--rounds", "auto", "--max-rounds", "30", "--patience", "2",
        "--min-delta", "0.01", "--monitor", "central_auc",
    ])  # fmt: skip

    # Assert
    assert result.exit_code == 0, result.output
    [cfg] = seen
    assert (cfg.rounds, cfg.round_limit, cfg.auto_rounds) == ("auto", 30, True)
    assert (cfg.patience, cfg.min_delta, cfg.monitor) == (2, 0.01, "central_auc")


def test_a_number_of_rounds_is_still_a_number(seen: list[RunConfig]) -> None:
    # Execute
    result = runner.invoke(app, ["simulate", "--rounds", "12"])

    # Assert
    assert result.exit_code == 0, result.output
    [cfg] = seen
    assert (cfg.rounds, cfg.round_limit, cfg.auto_rounds) == (12, 12, False)


def test_a_number_of_rounds_overrides_an_automatic_runs_config_json(
    tmp_path: Path, seen: list[RunConfig]
) -> None:
    # Prepare: an automatic run's config.json, run again with a fixed number of rounds
    recorded = RunConfig(rounds="auto", max_rounds=30, patience=3, monitor="central_loss")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(recorded.to_dict()), encoding="utf-8")

    # Execute
    result = runner.invoke(app, ["simulate", "--config", str(config), "--rounds", "8"])

    # Assert: its stopping settings went with its rounds auto
    assert result.exit_code == 0, result.output
    [cfg] = seen
    assert (cfg.rounds, cfg.max_rounds) == (8, None)
    assert (cfg.patience, cfg.monitor) == (10, "federated_loss")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rounds", "auto"], "--rounds auto needs --max-rounds N"),
        (["--rounds", "often"], "'rounds' must be an integer or auto, got 'often'"),
        (["--rounds", "0"], "rounds must be > 0 or auto, got 0"),
        (["--rounds", "auto", "--max-rounds", "0"], "max-rounds must be > 0, got 0"),
        (["--rounds", "auto", "--max-rounds", "9", "--patience", "0"],
         "patience must be >= 1, got 0"),
        (["--rounds", "auto", "--max-rounds", "9", "--min-delta", "-0.1"],
         "min-delta must be >= 0, got -0.1"),
        (["--rounds", "auto", "--max-rounds", "9", "--monitor", "loss"],
         "monitor must be federated_<metric> (the clients' own held-out rows) or "
         "central_<metric> (the server's test set), e.g. federated_loss; got 'loss'"),
        (["--rounds", "auto", "--max-rounds", "9", "--monitor", "federated_rmse"],
         "monitor federated_rmse is not a score of a binary run; one of federated_auc,"),
        (["--rounds", "auto", "--max-rounds", "9", "--target", "next_year_spend",
          "--monitor", "central_auc"],
         "monitor central_auc is not a score of a regression run; one of federated_rmse,"),
        (["--max-rounds", "9"], "max-rounds only applies with --rounds auto (the run then "
         "stops by itself), got rounds 10"),
        (["--rounds", "5", "--patience", "3"], "patience only applies with --rounds auto"),
        (["--monitor", "central_auc"], "monitor only applies with --rounds auto"),
    ],
    ids=["no-max-rounds", "word", "zero", "max-rounds-zero", "patience-zero", "min-delta",
         "monitor-scope", "monitor-of-another-task", "monitor-of-the-target",
         "max-rounds-alone", "patience-alone", "monitor-alone"],
)  # fmt: skip
def test_bad_automatic_rounds_exit_2_with_one_line(
    tmp_path: Path, args: list[str], message: str
) -> None:
    # Execute
    result = runner.invoke(
        app, ["simulate", "--runs-dir", str(tmp_path / "runs"), "--demo-rows", "600", *args]
    )

    # Assert
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
