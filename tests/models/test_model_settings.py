"""The model settings: model and model-params, and the old hidden-units key."""

import json
import warnings
from pathlib import Path

import pytest

from fedapp import registry
from fedapp.errors import UsageError
from fedapp.settings import RunConfig, describe, fields


def test_the_mlp_is_the_default_model_with_its_own_defaults() -> None:
    # Execute
    cfg = RunConfig()

    # Assert
    assert (cfg.model, cfg.model_params) == ("mlp", {})
    assert registry.get_model(cfg.model).resolve(cfg.model_params)["hidden-units"] == (64, 32)


def test_the_model_is_a_flag_and_its_parameters_are_not() -> None:
    # Execute
    model, params = describe("model"), describe("model-params")

    # Assert
    assert (model.cli, params.cli) == (True, False)
    assert model.section == params.section == "Training"
    assert "fedapp models" in model.help
    assert "hidden-units" not in {s.key for s in fields()}


def test_hidden_units_is_no_setting_any_more() -> None:
    # Execute / Assert
    with pytest.raises(UsageError, match="unknown setting 'hidden_units'"):
        RunConfig(hidden_units=(8,))


def test_model_params_are_read_as_a_table() -> None:
    # Execute
    cfg = RunConfig.from_mapping(
        {"model": "mlp", "model-params": {"hidden-units": [128, 64], "dropout": 0.1}}
    )

    # Assert
    assert cfg.model_params == {"hidden-units": [128, 64], "dropout": 0.1}


def test_an_old_run_with_hidden_units_loads_as_the_mlp_parameter(tmp_path: Path) -> None:
    # Prepare: a run directory's config.json from before models were plugins
    old = tmp_path / "config.json"
    old.write_text(json.dumps({"rounds": 2, "hidden-units": [16, 8], "strategy-params": {}}))

    # Execute
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = RunConfig.from_file(old)

    # Assert
    assert (cfg.model, cfg.model_params) == ("mlp", {"hidden-units": [16, 8]})
    assert registry.get_model("mlp").resolve(cfg.model_params)["hidden-units"] == (16, 8)
    assert "'hidden-units' is now the mlp model's parameter" in str(caught[0].message)
    assert cfg.to_dict()["model-params"] == {"hidden-units": [16, 8]}
    assert "hidden-units" not in cfg.to_dict()


def test_model_params_round_trip_through_flowers_flat_run_config() -> None:
    # Prepare
    cfg = RunConfig(
        strategy="fedprox",
        strategy_params={"proximal-mu": 0.5},
        model_params={"hidden-units": (128, 64), "dropout": 0.25},
    )

    # Execute
    flat = cfg.to_flwr()
    back = RunConfig.from_flwr(flat)

    # Assert: scalars only, as Flower's run config holds
    assert flat["model-params.hidden-units"] == "128,64"
    assert flat["model-params.dropout"] == 0.25
    assert all(isinstance(v, bool | int | float | str) for v in flat.values())
    assert back.strategy_params == {"proximal-mu": 0.5}
    mlp = registry.get_model("mlp")
    assert mlp.resolve(back.model_params) == mlp.resolve(cfg.model_params)
    assert mlp.resolve(back.model_params) == {"hidden-units": (128, 64), "dropout": 0.25}
