"""A run's model: checked before the run, recorded in config.json, cached per architecture."""

import pytest

from fedapp.data import TargetEncoding
from fedapp.errors import UsageError
from fedapp.flower import client_app
from fedapp.flower.run_setup import check, prepare_run
from fedapp.settings import RunConfig, Task

BINARY = TargetEncoding(Task.BINARY, ("0", "1"))
THREE = TargetEncoding(Task.MULTICLASS, ("a", "b", "c"))

SMALL = {"clients": 2, "rounds": 1, "demo_rows": 400, "seed": 5}


def test_the_resolved_model_parameters_are_recorded_in_config_json(tmp_path) -> None:
    # Prepare
    cfg = RunConfig(**SMALL, model_params={"hidden-units": "16,8"})

    # Execute
    run = prepare_run(cfg, tmp_path)

    # Assert
    config = run.read_config()
    assert config["model"] == "mlp"
    assert config["model-params"] == {"hidden-units": [16, 8], "dropout": 0.0}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "nope"}, "unknown model 'nope'; installed: mlp"),
        ({"model_params": {"dropout": 2}}, "--dropout must be < 1, got 2.0"),
    ],
)
def test_a_bad_model_fails_before_the_run(changes: dict, message: str) -> None:
    # Execute / Assert
    with pytest.raises(UsageError, match=message):
        check(RunConfig(**SMALL, **changes))


def test_clients_share_one_model_per_architecture() -> None:
    # Prepare
    small = RunConfig(model_params={"hidden-units": [8]})
    same = RunConfig(model_params={"hidden-units": "8"}, seed=99)
    wider = RunConfig(model_params={"hidden-units": [12]})
    other_rate = small.replace(learning_rate=0.01)

    # Execute
    model = client_app._model_of(small, 5, BINARY)

    # Assert
    assert client_app._model_of(same, 5, BINARY) is model
    assert client_app._model_of(wider, 5, BINARY) is not model
    assert client_app._model_of(small, 6, BINARY) is not model
    assert client_app._model_of(other_rate, 5, BINARY) is not model
    assert client_app._model_of(wider, 5, BINARY).get_weights()[0].shape == (5, 12)
    # Another task is another head: a model of its own.
    assert client_app._model_of(small, 5, THREE) is not model
