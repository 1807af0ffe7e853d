"""Running a run's config.json again: from another folder, with other flags, on changed data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from tables import customers, runner, write_csv

from fedapp.cli import app
from fedapp.cli import run as run_command
from fedapp.settings import RunConfig


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[RunConfig]:
    """The configs ``fedapp simulate`` would run, instead of running them."""
    configs: list[RunConfig] = []
    monkeypatch.setattr(run_command, "run_simulation", lambda cfg, *_: configs.append(cfg))
    return configs


def _config_json(folder: Path, **settings: object) -> Path:
    path = folder / "config.json"
    path.write_text(json.dumps({**RunConfig().to_dict(), **settings}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("flags", "params"),
    [
        (["--strategy", "fedavg"], {}),
        (["--strategy", "weighted", "--policy", "uniform"], {"policy": "uniform"}),
        (["--strategy", "fedprox"], {"proximal-mu": 0.3}),
        (["--rounds", "2"], {"proximal-mu": 0.3}),
        (["--proximal-mu", "0.5"], {"proximal-mu": "0.5"}),  # parsed by the plugin
    ],
    ids=["other", "other-with-its-own", "same", "no-strategy-flag", "param-flag"],
)
def test_another_strategy_starts_from_its_own_defaults(
    tmp_path: Path, seen: list[RunConfig], flags: list[str], params: dict
) -> None:
    # Prepare: a fedprox run's config
    config = _config_json(tmp_path, strategy="fedprox", **{"strategy-params": {"proximal-mu": 0.3}})

    # Execute
    result = runner.invoke(app, ["simulate", "--config", str(config), *flags])

    # Assert
    assert result.exit_code == 0, result.output
    [cfg] = seen
    assert cfg.strategy_params == params


def test_flat_strategy_params_of_a_file_go_with_its_strategy(
    tmp_path: Path, seen: list[RunConfig]
) -> None:
    # Prepare: Flower's flat form of the same settings
    config = tmp_path / "run.toml"
    config.write_text('strategy = "fedprox"\n"strategy-params.proximal-mu" = 0.3\n')

    # Execute
    result = runner.invoke(app, ["simulate", "--config", str(config), "--strategy", "fedavg"])

    # Assert
    assert result.exit_code == 0, result.output
    assert seen[0].strategy_params == {}


def test_a_file_without_a_strategy_keeps_its_parameters_for_the_default_one(
    tmp_path: Path, seen: list[RunConfig]
) -> None:
    # Prepare: parameters the default strategy (fedavg) must refuse, not lose
    config = tmp_path / "run.toml"
    config.write_text("[strategy-params]\nproximal-mu = 0.3\n")

    # Execute
    kept = runner.invoke(app, ["simulate", "--config", str(config), "--rounds", "2"])
    named = runner.invoke(app, ["simulate", "--config", str(config), "--strategy", "fedavg"])

    # Assert
    assert kept.exit_code == named.exit_code == 0, kept.output + named.output
    assert [c.strategy_params for c in seen] == [{"proximal-mu": 0.3}] * 2


def test_a_run_records_its_data_files_resolved_with_their_hashes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Flower: the run directory is written where a run starts.
    from fedapp.flower.run_setup import prepare_run

    # Prepare: a file named relative to the working folder
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path, "bank.csv", customers(rows=200))
    cfg = RunConfig(data="bank.csv", target="Churn", id_column="customerID", clients=2)

    # Execute
    run = prepare_run(cfg, tmp_path / "runs")

    # Assert
    recorded = run.read_config()
    digest = hashlib.sha256((tmp_path / "bank.csv").read_bytes()).hexdigest()
    assert recorded["data"] == str(tmp_path / "bank.csv")
    assert recorded["data-sha256"] == [digest]
    assert RunConfig.from_mapping(recorded).data_sha256 == (digest,)


def test_client_files_are_recorded_resolved_with_a_hash_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Flower: the run directory is written where a run starts.
    from fedapp.flower.run_setup import prepare_run

    # Prepare
    monkeypatch.chdir(tmp_path)
    for seed, name in enumerate(("a.csv", "b.csv"), start=1):
        write_csv(tmp_path, name, customers(seed=seed))
    cfg = RunConfig(client_data=("a.csv", "b.csv"), clients=2, target="Churn",
                    id_column="customerID")  # fmt: skip

    # Execute
    recorded = prepare_run(cfg, tmp_path / "runs").read_config()

    # Assert
    assert recorded["client-data"] == [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    assert recorded["data-sha256"] == [
        hashlib.sha256((tmp_path / n).read_bytes()).hexdigest() for n in ("a.csv", "b.csv")
    ]
    assert recorded["client-sources"] == ["a.csv", "b.csv"]  # as the user named them


def _inspect(config: Path, *flags: str) -> list[str]:
    result = runner.invoke(app, ["inspect", "--config", str(config), *flags],
                           env={"COLUMNS": "400"})  # fmt: skip
    assert result.exit_code == 0, result.output
    return [line for line in result.stderr.splitlines() if line.startswith("warning:")]


def test_a_recorded_config_runs_from_another_folder_and_warns_when_its_file_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: the recorded config of a run on bank.csv; then another folder
    path = write_csv(tmp_path, "bank.csv", customers(rows=200))
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    config = _config_json(tmp_path, data=path, target="Churn", partition="iid", clients=2,
                          **{"id-column": "customerID", "data-sha256": [digest]})  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    write_csv(elsewhere, "bank.csv", customers(rows=200, seed=9))  # the same name, other rows

    # Execute
    unchanged = _inspect(config)
    write_csv(tmp_path, "bank.csv", customers(rows=200, seed=5))
    changed = _inspect(config)
    other_file = _inspect(config, "--data", "bank.csv")

    # Assert
    assert not any("content" in w for w in unchanged)
    now = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert (
        f"warning: {path}: its content differs from the file this config was recorded with "
        f"(sha256 {digest[:12]}... then, {now[:12]}... now); results may differ from that run's"
    ) in changed
    assert not any("content" in w for w in other_file)  # a new file: nothing to compare with
