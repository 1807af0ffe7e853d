"""fedapp is a valid Flower App: `flwr run .` finds its components and config."""

from pathlib import Path

from flwr.app import Context, RecordDict
from flwr.cli.config_utils import load_and_validate
from flwr.clientapp import ClientApp
from flwr.common.config import flatten_dict
from flwr.serverapp import ServerApp

from fedapp.flower.client_app import app as client_app
from fedapp.flower.client_app import client_fn
from fedapp.flower.server_app import app as server_app
from fedapp.settings import RunConfig

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_flower_validates_the_app_and_its_components() -> None:
    config, warnings = load_and_validate(PYPROJECT, check_module=True)
    assert warnings == []
    components = config["tool"]["flwr"]["app"]["components"]
    assert components == {
        "serverapp": "fedapp.flower.server_app:app",
        "clientapp": "fedapp.flower.client_app:app",
    }
    assert isinstance(server_app, ServerApp) and isinstance(client_app, ClientApp)


def test_app_config_is_a_run_config() -> None:
    config, _ = load_and_validate(PYPROJECT, check_module=False)
    run_config = flatten_dict(config["tool"]["flwr"]["app"]["config"])
    cfg = RunConfig.from_mapping(run_config, source="pyproject.toml")
    assert cfg.rounds == run_config["num-server-rounds"] and cfg.clients == 2


def test_client_app_reads_settings_from_flowers_run_config() -> None:
    run_config = RunConfig(clients=2, demo_rows=400).to_flwr()
    context = Context(
        run_id=1,
        node_id=7,
        node_config={"partition-id": 1, "num-partitions": 2},
        state=RecordDict(),
        run_config=run_config,
    )
    client = client_fn(context)  # what fedapp.flower.client_app:app calls for each message
    answer = client.numpy_client.get_properties({})
    assert answer == {"partition-id": 1}
