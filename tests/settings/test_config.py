"""The run settings: one declaration each, parsed from TOML, JSON and Flower's run config."""

import json
import math
import tomllib
import warnings
from pathlib import Path

import pytest

from fedapp.errors import UsageError
from fedapp.settings import (
    DATA_SECTIONS,
    SECTIONS,
    DpClipping,
    DpMode,
    RunConfig,
    describe,
    fields,
    read_settings,
    value_error,
)
from fedapp.settings.specs import Attack, PartitionSpec


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


# --- one declaration per setting -------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rounds": 0}, "rounds must be > 0 or auto, got 0"),
        ({"noise_multiplier": -1}, "noise-multiplier must be >= 0, got -1"),
        ({"test_fraction": 1.5}, "test-fraction must be in (0, 1), got 1.5"),
        ({"delta": 2}, "delta must be in (0, 1), got 2"),
        ({"dp": "laplace"}, "dp must be one of none, central, record, got 'laplace'"),
        ({"malicious": -1}, "malicious must be in [0, 3] (at most the number of clients), got -1"),
    ],
    ids=["gt", "ge", "open-interval", "int-for-float", "choices", "at-most"],
)
def test_each_kind_of_constraint_has_its_message(changes: dict, message: str) -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        RunConfig(**changes)

    # Assert
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rounds": True}, "run.toml: 'rounds' must be an integer or auto, got True"),
        ({"rounds": 2.0}, "run.toml: 'rounds' must be an integer or auto, got 2.0"),
        ({"delta": "small"}, "run.toml: 'delta' must be a number, got 'small'"),
        ({"secure-aggregation": 1}, "run.toml: 'secure-aggregation' must be true or false"),
        ({"drop": [1, 2]}, "run.toml: 'drop' must be a list of strings, got [1, 2]"),
        ({"strategy-params": 3}, "run.toml: 'strategy-params' must be a table"),
        ({"model-params": [64]}, "run.toml: 'model-params' must be a table"),
    ],
    ids=["bool-for-int", "float-for-int", "text-for-float", "int-for-bool", "items", "table",
         "model-table"],
)  # fmt: skip
def test_a_value_of_the_wrong_type_names_its_file_and_setting(settings: dict, message: str) -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        RunConfig.from_mapping(settings, source="run.toml")

    # Assert
    assert str(caught.value) == message


def test_a_declaration_gives_the_key_default_range_and_section() -> None:
    # Execute
    entry = describe("eval-every")

    # Assert
    assert (entry.name, entry.key, entry.type, entry.default) == (
        "eval_every",
        "eval-every",
        int,
        1,
    )
    assert (entry.section, entry.range_text(), entry.minimum) == ("Federation", "> 0", 1)
    assert describe("eval_every") is entry


def test_sections_list_every_setting_once() -> None:
    # Execute
    by_section = [s.name for section in SECTIONS for s in fields(section)]

    # Assert
    assert sorted(by_section) == sorted(RunConfig.model_fields)
    assert [s.name for s in fields(*DATA_SECTIONS)] == [
        "data", "client_data", "demo_rows", "target", "task", "positive_label", "id_column", "drop",
        "categorical", "na_values", "sep", "encoding", "max_categories", "min_category_count",
        "test_fraction", "validation_fraction", "seed", "data_sha256", "clients", "partition",
    ]  # fmt: skip


def test_eval_every_is_read_from_toml(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "run.toml"
    path.write_text("eval-every = 5\nrounds = 10\n", encoding="utf-8")

    # Execute
    cfg = RunConfig.from_file(path)

    # Assert
    assert cfg.eval_every == 5
    assert cfg.to_dict()["eval-every"] == 5


def test_specs_are_parsed_once_and_written_back_as_text() -> None:
    # Execute
    cfg = RunConfig.from_mapping(
        {"partition": "dirichlet:0.5", "clients": 4, "malicious": 1, "attack": "scale:4"}
    )

    # Assert
    assert cfg.partition == PartitionSpec("dirichlet", alpha=0.5)
    assert cfg.attack == Attack("scale", 4.0)
    assert (cfg.partition, cfg.attack) == ("dirichlet:0.5", "scale:4")  # as the user wrote them
    assert (cfg.to_dict()["partition"], cfg.to_dict()["attack"]) == ("dirichlet:0.5", "scale:4")
    assert (cfg.to_flwr()["partition"], cfg.to_flwr()["attack"]) == ("dirichlet:0.5", "scale:4")


def test_modes_are_enums_equal_to_their_text() -> None:
    # Execute
    cfg = RunConfig.from_mapping({"dp": "central", "dp-clipping": "client"})

    # Assert
    assert (cfg.dp, cfg.dp_clipping) == (DpMode.CENTRAL, DpClipping.CLIENT)
    assert cfg.dp == "central"
    assert type(cfg.to_dict()["dp"]) is str and type(cfg.to_flwr()["dp-clipping"]) is str


def test_the_resolved_partition_is_typed_and_in_words() -> None:
    # Execute
    demo, table = RunConfig(), RunConfig(data="t.csv", target="y")

    # Assert
    assert demo.partition_spec == PartitionSpec("column", column="institution")
    assert (demo.resolved_partition, table.resolved_partition) == ("column:institution", "iid")
    assert RunConfig(data="node", target="y").partition_spec is None


def test_flowers_flat_run_config_is_read() -> None:
    # Prepare
    flat = {"num-server-rounds": 3, "drop": "a,b", "strategy-params.proximal-mu": 0.2,
            "strategy": "fedprox", "runs-dir": "out"}  # fmt: skip

    # Execute
    cfg = RunConfig.from_flwr(flat)

    # Assert
    assert (cfg.rounds, cfg.drop, cfg.runs_dir) == (3, ("a", "b"), "out")
    assert cfg.strategy_params == {"proximal-mu": 0.2}


def test_flowers_old_run_dir_key_names_the_runs_folder_and_warns() -> None:
    # Prepare: the app's default under the new name, the user's override under the old one
    run_config = {"runs-dir": "runs", "run-dir": "/data/fl-runs"}

    # Execute
    with pytest.warns(DeprecationWarning, match="'run-dir' is the old name of 'runs-dir'"):
        cfg = RunConfig.from_flwr(run_config)

    # Assert
    assert (cfg.runs_dir, cfg.run_dir) == ("/data/fl-runs", None)


def test_run_dir_outside_flowers_run_config_is_the_runs_own_folder() -> None:
    # Execute
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = RunConfig.from_mapping({"run-dir": "runs/exp1"})

    # Assert
    assert (cfg.run_dir, cfg.runs_dir) == ("runs/exp1", "runs")


def test_replace_checks_the_new_values() -> None:
    # Prepare
    cfg = RunConfig(clients=4)

    # Execute
    with pytest.raises(UsageError) as caught:
        cfg.replace(malicious=5, attack="scale:2")

    # Assert
    assert str(caught.value) == "malicious must be in [0, 4] (at most the number of clients), got 5"


def test_the_flower_apps_config_names_the_runs_folder() -> None:
    # Prepare: [tool.flwr.app.config] holds scalars only, already Flower's flat form
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    app_config = tomllib.loads(pyproject.read_text(encoding="utf-8"))["tool"]["flwr"]["app"]

    # Execute
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = RunConfig.from_flwr(app_config["config"])

    # Assert
    assert (cfg.runs_dir, cfg.run_dir) == ("runs", None)


# --- values no run can use: refused when the settings are built ------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seed": -1}, "seed must be in [0, 4294967295], got -1"),
        (
            {"seed": 99999999999999999999},
            "seed must be in [0, 4294967295], got 99999999999999999999",
        ),
        ({"learning_rate": math.inf}, "learning-rate must be a finite number > 0, got inf"),
        ({"test_fraction": math.nan}, "test-fraction must be a finite number in (0, 1), got nan"),
        (
            {"anomaly_threshold": -math.inf},
            "anomaly-threshold must be a finite number > 0, got -inf",
        ),
    ],
    ids=["negative-seed", "huge-seed", "inf-rate", "nan-fraction", "minus-inf"],
)
def test_a_value_no_run_can_use_is_refused(changes: dict, message: str) -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        RunConfig(**changes)

    # Assert
    assert str(caught.value) == message


def test_an_infinite_number_in_a_toml_file_is_refused(tmp_path: Path) -> None:
    # Prepare: TOML writes infinity as `inf`
    path = tmp_path / "run.toml"
    path.write_text("learning-rate = inf\n", encoding="utf-8")

    # Execute
    with pytest.raises(UsageError) as caught:
        RunConfig.from_file(path)

    # Assert
    assert str(caught.value) == "learning-rate must be a finite number > 0, got inf"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"drop": ("tenure", "y")},
            "--drop y: 'y' is the target column (--target); it cannot also be left out",
        ),
        (
            {"id_column": "y"},
            "--id-column y: 'y' is the target column (--target); it cannot also be an identifier",
        ),
        (
            {"partition": "column:y", "clients": 2},
            "partition column:y splits by the target column: every client would hold a "
            "single class; split by another column, or use dirichlet:ALPHA for label skew",
        ),
    ],
    ids=["drop", "id-column", "partition"],
)
def test_the_target_is_only_the_target(changes: dict, message: str) -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        RunConfig(data="t.csv", target="y", **changes)

    # Assert
    assert str(caught.value) == message


def test_the_demo_target_is_only_the_target_too() -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        RunConfig(drop=("churned",))

    # Assert
    assert str(caught.value).startswith("--drop churned: 'churned' is the target column")


def test_data_hashes_must_match_the_files() -> None:
    # Execute
    with pytest.raises(UsageError) as caught:
        RunConfig(client_data=("a.csv", "b.csv"), clients=2, target="y", data_sha256=("0" * 64,))

    # Assert
    assert str(caught.value) == (
        "data-sha256 holds 1 hash but there are 2 data files (client-data); "
        "give one per file, in order, or none"
    )


@pytest.mark.parametrize(
    ("name", "value", "others", "message"),
    [
        ("rounds", 0, {}, "rounds must be > 0 or auto, got 0"),
        ("learning-rate", float("inf"), {}, "learning-rate must be a finite number > 0, got inf"),
        ("malicious", 5, {"clients": 3}, "malicious must be in [0, 3]"),
        ("partition", "dirichlet:x", {}, "dirichlet needs a number"),
        ("rounds", 3, {}, None),
    ],
)
def test_value_error_checks_one_value_as_the_cli_would(
    name: str, value: object, others: dict, message: str | None
) -> None:
    # Execute
    said = value_error(name, value, others)

    # Assert
    assert said == message if message is None else message in (said or "")


# --- rounds auto ------------------------------------------------------------


def test_rounds_auto_is_read_from_toml_and_recorded_with_its_limit(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "run.toml"
    path.write_text(
        'rounds = "auto"\nmax-rounds = 40\npatience = 3\nmonitor = "central_auc"\n',
        encoding="utf-8",
    )

    # Execute
    cfg = RunConfig.from_file(path)
    recorded = cfg.to_dict()

    # Assert
    assert (cfg.rounds, cfg.auto_rounds, cfg.round_limit) == ("auto", True, 40)
    assert (cfg.patience, cfg.min_delta, cfg.monitor) == (3, 0.0, "central_auc")
    assert (recorded["rounds"], recorded["max-rounds"], recorded["patience"]) == ("auto", 40, 3)
    assert RunConfig.from_mapping(recorded).to_dict() == recorded


def test_rounds_auto_travels_in_flowers_run_config() -> None:
    # Prepare
    cfg = RunConfig(rounds="auto", max_rounds=25, min_delta=0.001)

    # Execute
    flat = cfg.to_flwr()

    # Assert
    assert (flat["rounds"], flat["max-rounds"], flat["min-delta"]) == ("auto", 25, 0.001)
    back = RunConfig.from_flwr(flat)
    assert (back.rounds, back.max_rounds, back.min_delta) == ("auto", 25, 0.001)


@pytest.mark.parametrize(
    ("given", "rounds"), [("auto", "auto"), (" Auto ", "auto"), ("12", 12), (12, 12)]
)  # fmt: skip
def test_rounds_typed_as_text_are_a_number_or_auto(given: object, rounds: object) -> None:
    # Execute
    cfg = RunConfig.from_mapping({"rounds": given, "max-rounds": 5} if rounds == "auto" else
                                 {"rounds": given})  # fmt: skip

    # Assert
    assert cfg.rounds == rounds
    assert cfg.round_limit == (5 if rounds == "auto" else 12)


def test_the_rounds_declaration_says_its_word() -> None:
    # Execute
    entry = describe("rounds")

    # Assert: a number (the UI's number input) that also takes auto (the CLI reads text)
    assert (entry.type, entry.words, entry.gt, entry.default) == (int, ("auto",), 0, 10)
    assert entry.range_text() == "> 0 or auto"
    assert describe("max_rounds").range_text() == "> 0"
