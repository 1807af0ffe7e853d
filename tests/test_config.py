import json
from pathlib import Path

import pytest

from fedapp.errors import UsageError
from fedapp.settings import RunConfig, read_settings


def test_defaults_are_the_demo() -> None:
    cfg = RunConfig()
    assert (cfg.clients, cfg.rounds, cfg.strategy) == (3, 10, "fedavg")
    assert cfg.resolved_partition == "column:institution"
    assert cfg.sample_size == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rounds": 0}, "rounds must be > 0"),
        ({"clients": -1}, "clients must be > 0"),
        ({"local_epochs": 0}, "local-epochs must be > 0"),
        ({"learning_rate": 0.0}, "learning-rate must be > 0"),
        ({"test_fraction": 1.0}, "test-fraction must be in (0, 1)"),
        ({"clients_per_round": 5}, "clients-per-round (5) must not exceed clients (3)"),
        ({"data": "x.csv"}, "--target is required with --data or --client-data"),
        ({"client_data": ("a.csv",), "target": "y"}, "clients (3) must equal the number of"),
        (
            {"client_data": ("a.csv",), "clients": 1, "target": "y", "data": "b.csv"},
            "give either --data or --client-data, not both",
        ),
        (
            {"client_data": ("a.csv",), "clients": 1, "target": "y", "partition": "iid"},
            "with --client-data each file is one client",
        ),
    ],
)
def test_invalid_values_name_the_setting(changes: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RunConfig(**changes)


def test_round_trip_through_dict_and_flower_config() -> None:
    cfg = RunConfig(rounds=4, strategy="fedprox", strategy_params={"proximal-mu": 0.5})
    resolved = cfg.replace(partition="column:institution", target="churned")
    assert RunConfig.from_mapping(cfg.to_dict()) == resolved
    flat = cfg.to_flwr()
    assert flat["strategy-params.proximal-mu"] == 0.5
    assert all(isinstance(v, bool | int | float | str) for v in flat.values())
    assert RunConfig.from_mapping(flat).strategy_params == {"proximal-mu": 0.5}


def test_client_files_set_the_number_of_clients() -> None:
    cfg = RunConfig.from_mapping({"client-data": ["a.csv", "b.parquet"], "target": "y"})
    assert cfg.clients == 2 and cfg.resolved_partition == "files"
    flat = cfg.to_flwr()
    assert flat["client-data"] == "a.csv,b.parquet"
    assert RunConfig.from_mapping(flat).client_data == ("a.csv", "b.parquet")


def test_flower_round_alias() -> None:
    assert RunConfig.from_mapping({"num-server-rounds": 7}).rounds == 7


def test_unknown_key_and_wrong_type() -> None:
    with pytest.raises(UsageError, match="unknown setting 'roundz'"):
        RunConfig.from_mapping({"roundz": 3})
    with pytest.raises(UsageError, match="'rounds' must be an integer"):
        RunConfig.from_mapping({"rounds": "three"})
    with pytest.raises(UsageError, match="'baseline' must be true or false"):
        RunConfig.from_mapping({"baseline": "yes"})


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        'rounds = 3\nstrategy = "fedprox"\n[strategy-params]\nproximal-mu = 0.2\n',
        encoding="utf-8",
    )
    cfg = RunConfig.from_file(path)
    assert (cfg.rounds, cfg.strategy, cfg.strategy_params) == (3, "fedprox", {"proximal-mu": 0.2})


def test_malformed_and_missing_toml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("rounds = = 3\n", encoding="utf-8")
    with pytest.raises(UsageError, match="malformed TOML"):
        read_settings(bad)
    with pytest.raises(UsageError, match="cannot read config file"):
        read_settings(tmp_path / "absent.toml")


def test_a_runs_config_json_runs_again(tmp_path: Path) -> None:
    cfg = RunConfig(rounds=4, strategy="fedprox", strategy_params={"proximal-mu": 0.3}, seed=9)
    recorded = {**cfg.replace(run_dir="runs/old").to_dict(), "versions": {"fedapp": "0"}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(recorded), encoding="utf-8")
    again = RunConfig.from_file(path)
    assert again == cfg.replace(partition="column:institution", target="churned")
    assert again.run_dir is None  # a new run directory, never the old one
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(UsageError, match="JSON object"):
        read_settings(path)
    path.write_text("{", encoding="utf-8")
    with pytest.raises(UsageError, match="malformed JSON"):
        read_settings(path)
