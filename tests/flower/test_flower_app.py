"""fedapp is a valid Flower App: `flwr run .` finds its components and config.

The ServerApp component running a whole federation from its run config is in
``test_secagg.py`` (``test_the_flower_app_runs_secagg_from_its_run_config``).
"""

import json
from pathlib import Path
from unittest.mock import MagicMock

import pytest
from flwr.app import Context, Message, RecordDict
from flwr.cli.config_utils import load_and_validate
from flwr.common import GetPropertiesIns
from flwr.common.config import flatten_dict
from flwr.common.constant import MessageTypeLegacy
from flwr.compat.common import recorddict_compat as compat
from flwr.supercore.task_identity import TaskIdentity

from fedapp import data
from fedapp.flower import server_app
from fedapp.flower.client_app import app as client_app
from fedapp.flower.client_app import client_fn
from fedapp.flower.protocol import STATISTICS_QUERY
from fedapp.runs import Recorder, RunDir, RunView
from fedapp.settings import RunConfig

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_flower_validates_the_app_and_its_components() -> None:
    config, warnings = load_and_validate(PYPROJECT, check_module=True)
    assert warnings == []
    components = config["tool"]["flwr"]["app"]["components"]
    assert components == {
        "serverapp": "fedapp.flower.server_app:app",
        "clientapp": "fedapp.flower.client_app:app",
    }


def test_the_client_app_component_answers_the_statistics_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare: what a SuperNode's runtime sets, and the run config `flwr run` sends
    for name, value in (("_run_id", 1), ("_node_id", 8), ("_task_id", 1)):
        monkeypatch.setattr(TaskIdentity, name, value)
    cfg = RunConfig(clients=2, demo_rows=400)
    context = Context(
        run_id=1,
        node_id=8,
        node_config={"partition-id": 1, "num-partitions": 2},
        state=RecordDict(),
        run_config=cfg.to_flwr(),
    )
    query = compat.getpropertiesins_to_recorddict(GetPropertiesIns({STATISTICS_QUERY: True}))
    message = Message(content=query, dst_node_id=8, message_type=MessageTypeLegacy.GET_PROPERTIES)

    # Execute: the component `flwr run` loads (fedapp.flower.client_app:app)
    reply = client_app(message, context)

    # Assert: partition 1's statistics, read with the run config's settings
    assert not reply.has_error(), reply.error
    properties = compat.recorddict_to_getpropertiesres(reply.content).properties
    assert properties["partition-id"] == 1
    rows = json.loads(properties["statistics"])["rows"]
    assert rows == len(data.client_share(cfg, 1).train)


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


def test_a_deployed_run_that_fails_is_recorded_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: the ServerApp of `flwr run`, whose rounds break
    run_dir = RunDir.create(tmp_path / "r", tmp_path, "fedavg")
    run_dir.mark_started(2)
    cfg = RunConfig(clients=2, rounds=2)

    def components(_context):
        return server_app.server_components(cfg, Recorder(run_dir, cfg.rounds))[0]

    def broken_rounds(*_args):
        raise RuntimeError("the SuperLink went away")

    monkeypatch.setattr(server_app, "run_rounds", broken_rounds)
    app = server_app.build_server_app(components)

    # Execute
    with pytest.raises(RuntimeError):
        app._main(MagicMock(), MagicMock())

    # Assert: not "running" for ever
    view = RunView.read(run_dir.path)
    assert view.state == "failed" and "the SuperLink went away" in view.error
