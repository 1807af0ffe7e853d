"""`fedapp models`, and the model's flags of `fedapp simulate`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tables import runner

from fedapp import registry
from fedapp.cli import app
from fedapp.cli import run as run_command
from fedapp.registry import ModelPlugin, Param, StrategyPlugin
from fedapp.settings import RunConfig


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[RunConfig]:
    """The configs ``fedapp simulate`` would run, instead of running them."""
    configs: list[RunConfig] = []
    monkeypatch.setattr(run_command, "run_simulation", lambda cfg, *_: configs.append(cfg))
    return configs


def _simulate(*args: str):
    return runner.invoke(app, ["simulate", *args], env={"COLUMNS": "200"})


# --- fedapp models -----------------------------------------------------------------


def test_models_lists_name_summary_and_parameters_as_json() -> None:
    # Execute
    result = runner.invoke(app, ["models", "--json"])

    # Assert
    assert result.exit_code == 0, result.output
    listing = {p["name"]: p for p in json.loads(result.stdout)}
    assert list(listing) == ["mlp"]
    assert listing["mlp"]["summary"].startswith("Multilayer perceptron")
    units, dropout = listing["mlp"]["params"]
    assert (units["name"], units["type"], units["many"], units["default"]) == (
        "hidden-units", "int", True, [64, 32],
    )  # fmt: skip
    assert (dropout["name"], dropout["minimum"], dropout["less_than"]) == ("dropout", 0, 1)


def test_models_table_shows_each_parameter_with_its_type_and_default() -> None:
    # Execute
    result = runner.invoke(app, ["models"], env={"COLUMNS": "200"})

    # Assert
    assert result.exit_code == 0, result.output
    assert "Installed models" in result.stdout
    assert "--hidden-units (list of int, default 64,32): Widths of the hidden layers." in (
        result.stdout
    )
    assert "--dropout (float, default 0.0)" in result.stdout


def test_models_lists_broken_plugins_apart(install_plugin) -> None:
    # Prepare
    install_plugin(
        "needsgpu", "fedapp_needsgpu_cli_model", "raise ImportError('no gpu')\n",
        group=registry.MODEL_GROUP,
    )  # fmt: skip

    # Execute
    table = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    as_json = runner.invoke(app, ["models", "--json"])

    # Assert
    assert table.exit_code == as_json.exit_code == 0
    assert "needsgpu (broken)" in table.stdout and "ImportError: no gpu" in table.stdout
    assert [p["name"] for p in json.loads(as_json.stdout)] == ["mlp"]
    assert "ImportError: no gpu" in as_json.stderr


def test_the_help_lists_models_after_strategies() -> None:
    # Execute
    text = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).stdout

    # Assert
    assert text.index(" strategies ") < text.index(" models ") < text.index(" runs ")


# --- simulate: the model and its flags -----------------------------------------------


def test_model_flags_go_to_the_model(seen: list[RunConfig]) -> None:
    # Execute
    result = _simulate("--model", "mlp", "--hidden-units", "128,64", "--dropout", "0.1")

    # Assert
    assert result.exit_code == 0, result.output
    [cfg] = seen
    assert (cfg.model, cfg.strategy_params) == ("mlp", {})
    assert registry.get_model("mlp").resolve(cfg.model_params) == {
        "hidden-units": (128, 64), "dropout": 0.1,
    }  # fmt: skip


def test_strategy_and_model_flags_each_go_to_their_plugin(seen: list[RunConfig]) -> None:
    # Execute
    result = _simulate("--strategy", "fedprox", "--dropout=0.2", "--proximal-mu", "0.5")

    # Assert
    assert result.exit_code == 0, result.output
    [cfg] = seen
    assert (cfg.strategy_params, cfg.model_params) == ({"proximal-mu": "0.5"}, {"dropout": "0.2"})


def test_a_flag_both_plugins_declare_is_refused(tmp_path: Path, register_plugin) -> None:
    # Prepare
    register_plugin(
        StrategyPlugin(
            "droppy", "Declares what the model does.", lambda common, params: None,
            params=(Param("dropout", float, 0.0, "Drops clients."),),
        )
    )  # fmt: skip

    # Execute
    result = _simulate("--runs-dir", str(tmp_path), "--strategy", "droppy", "--dropout", "0.1")

    # Assert
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --dropout is a parameter of both strategy 'droppy' (its parameters: --dropout) "
        "and model 'mlp' (its parameters: --hidden-units, --dropout); set it in a --config "
        "file's strategy-params or model-params table"
    )


def test_a_flag_neither_plugin_declares_names_both_plugins_parameters(tmp_path: Path) -> None:
    # Execute
    result = _simulate("--runs-dir", str(tmp_path), "--strategy", "fedprox", "--width", "3")

    # Assert
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: strategy 'fedprox' has no parameter --width (its parameters: --proximal-mu), "
        "nor has model 'mlp' (its parameters: --hidden-units, --dropout)"
    )


def test_an_unknown_model_exits_2_listing_the_installed_ones(tmp_path: Path) -> None:
    # Execute
    result = _simulate("--runs-dir", str(tmp_path / "runs"), "--model", "my_pkg_resnet")

    # Assert
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == "error: unknown model 'my_pkg_resnet'; installed: mlp"
    assert not (tmp_path / "runs").exists()


def test_a_bad_model_parameter_exits_2(tmp_path: Path) -> None:
    # Execute
    result = _simulate("--runs-dir", str(tmp_path / "runs"), "--hidden-units", "64,-1")

    # Assert
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == "error: --hidden-units must be >= 1, got -1"


@pytest.mark.parametrize(
    ("file", "flags", "params"),
    [
        ('[model-params]\nhidden-units = [8]\n', ["--model", "tiny"], {}),
        ('"model-params.hidden-units" = "8"\n', ["--model", "tiny"], {}),
        ('model = "mlp"\n[model-params]\nhidden-units = [8]\n', ["--model", "mlp"],
         {"hidden-units": [8]}),
        ('[model-params]\nhidden-units = [8]\n', ["--dropout", "0.5"],
         {"hidden-units": [8], "dropout": "0.5"}),
        ("hidden-units = [8]\n", ["--model", "tiny"], {}),  # an old run's key
    ],
    ids=["other-model", "other-model-flat", "same-model", "param-flag", "old-key"],
)  # fmt: skip
def test_another_model_than_the_files_drops_its_parameters(
    tmp_path: Path,
    seen: list[RunConfig],
    register_model,
    file: str,
    flags: list[str],
    params: dict,
) -> None:
    # Prepare
    register_model(ModelPlugin("tiny", "No parameters.", lambda *args: None))
    config = tmp_path / "run.toml"
    config.write_text(file)

    # Execute
    result = _simulate("--config", str(config), *flags)

    # Assert
    assert result.exit_code == 0, result.output
    [cfg] = seen
    assert cfg.model_params == params


def test_simulate_help_names_the_flags_of_the_installed_models(register_model) -> None:
    # Prepare
    register_model(
        ModelPlugin(
            "knobnet", "A model for this test.", lambda *args: None,
            params=(Param("zeta-width-17", int, 4, "A knob no other plugin has."),),
        )
    )  # fmt: skip

    # Execute
    result = _simulate("--help")

    # Assert
    assert result.exit_code == 0, result.output
    assert "Model parameters are further flags" in result.stdout
    assert "knobnet: --zeta-width-17" in result.stdout
    assert "mlp: --hidden-units, --dropout" in result.stdout
    assert "fedprox: --proximal-mu" in result.stdout
