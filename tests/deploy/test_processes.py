"""fedapp.deploy.processes (the Flower processes' flags and pre-flight checks) and the
node-config data mode of a deployed ClientApp."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from flwr.app import Context, RecordDict
from flwr.common.config import parse_config_args

from fedapp import simulation as engine
from fedapp.data.synthetic import TARGETS, make_churn_table
from fedapp.deploy import processes as deploy
from fedapp.deploy.certs import generate
from fedapp.errors import UsageError
from fedapp.flower.client_app import STATISTICS_QUERY, client_fn
from fedapp.settings import RunConfig


def test_node_config_survives_flowers_parser() -> None:
    config = {"data-path": "/data/my bank=files.csv", "partition-id": 3}
    text = deploy.format_node_config(config)
    assert parse_config_args([text]) == config
    with pytest.raises(UsageError, match="must not contain quotes or backslashes"):
        deploy.format_node_config({"data-path": 'a"b.csv'})


def test_secure_flags_enable_tls_and_node_authentication_together() -> None:
    tls = deploy.ServerTls("ca.crt", "link.crt", "link.key")
    secure = deploy.superlink_args(tls, "/state/db")
    plain = deploy.superlink_args(None, "/state/db")
    assert "--enable-supernode-auth" in secure and "--insecure" not in secure
    assert secure[secure.index("--ssl-certfile") + 1] == "link.crt"
    assert "--insecure" in plain and not any(a.startswith("--ssl") for a in plain)
    # ServerApps run from the installed fedapp: nothing is installed at run time.
    assert {"--disable-runtime-dependency-installation", "process"} <= set(plain)
    node = deploy.supernode_args(
        "link:8000", {"partition-id": 0}, deploy.NodeCredentials("ca.crt", "k"), "0.0.0.0:8081"
    )
    assert node[node.index("--auth-supernode-private-key") + 1] == "k"
    assert node[node.index("--host") + 1] == "127.0.0.1"  # its Runtime API stays local


def test_superlink_preflight_names_the_missing_file(tmp_path: Path) -> None:
    paths = generate(tmp_path, ["localhost"], ["bank"])
    args = deploy.superlink_args(
        deploy.ServerTls(str(paths.ca_cert), str(paths.superlink_cert), str(tmp_path / "no.key")),
        str(tmp_path / "state.db"),
    )
    with pytest.raises(UsageError, match=r"--ssl-keyfile: .*no\.key: no such file"):
        deploy.preflight("superlink", args)
    good = deploy.superlink_args(
        deploy.ServerTls(str(paths.ca_cert), str(paths.superlink_cert), str(paths.superlink_key)),
        str(tmp_path / "missing-folder" / "state.db"),
    )
    with pytest.raises(UsageError, match=r"--database: folder .*missing-folder"):
        deploy.preflight("superlink", good)


def test_a_certificate_that_is_not_one_is_named(tmp_path: Path) -> None:
    paths = generate(tmp_path, ["localhost"], ["bank"])
    args = deploy.superlink_args(
        deploy.ServerTls(str(paths.ca_cert), str(paths.superlink_key), str(paths.superlink_key)),
        str(tmp_path / "state.db"),
    )
    with pytest.raises(UsageError, match=r"--ssl-certfile: .* is not a PEM certificate"):
        deploy.preflight("superlink", args)


@pytest.mark.parametrize(
    ("node_config", "message"),
    [
        ("data-path='x.csv'", "needs partition-id=N"),
        ("partition-id=-1", "needs partition-id=N"),
        ("partition-id=0 data-path='/no/such.csv'", "data-path: /no/such.csv: no such file"),
    ],
)
def test_supernode_preflight_checks_its_node_config(node_config: str, message: str) -> None:
    args = ["--superlink", "127.0.0.1:9", "--insecure", "--node-config", node_config]
    with pytest.raises(UsageError, match=message):
        deploy.preflight("supernode", args, wait=0)


def test_a_node_key_that_is_not_an_openssh_ec_key_is_refused(tmp_path: Path) -> None:
    paths = generate(tmp_path, ["localhost"], ["bank"])
    args = deploy.supernode_args(
        "127.0.0.1:9",
        {"partition-id": 0},
        deploy.NodeCredentials(str(paths.ca_cert), str(paths.superlink_key)),  # PEM, not OpenSSH
        "127.0.0.1:0",
    )
    with pytest.raises(UsageError, match="not an elliptic-curve OpenSSH private key"):
        deploy.preflight("supernode", args, wait=0)


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_waiting_for_the_superlink_needs_a_200_from_health(health_server: HTTPServer) -> None:
    address = f"127.0.0.1:{health_server.server_port}"
    deploy.wait_for_superlink(address, None, wait=5)
    _Health.status = 503
    try:
        with pytest.raises(UsageError, match=rf"cannot reach the SuperLink at {address} .*503"):
            deploy.wait_for_superlink(address, None, wait=1)
    finally:
        _Health.status = 200
    with pytest.raises(UsageError, match="must be HOST:PORT, without a URL scheme"):
        deploy.wait_for_superlink(f"http://{address}", None, wait=1)


def _context(node_config: dict, run_config: dict) -> Context:
    return Context(
        run_id=1, node_id=7, node_config=node_config, state=RecordDict(), run_config=run_config
    )


def test_a_supernode_reads_its_own_file_from_its_data_path(tmp_path: Path) -> None:
    # One bank's export: its features and the churn target.
    table = make_churn_table(300, 1, seed=5).drop(columns=["institution", *TARGETS[1:]])
    table.to_csv(tmp_path / "bank.csv", index=False)
    run_config = RunConfig(data="node", target="churned", clients=2).to_flwr()
    node_config = {"partition-id": 4, "data-path": str(tmp_path / "bank.csv")}
    client = client_fn(_context(node_config, run_config)).numpy_client

    answer = client.get_properties({STATISTICS_QUERY: True})

    assert answer["partition-id"] == 4
    stats = json.loads(str(answer["statistics"]))
    # The whole file is this node's share, less its held-out test fraction (0.2).
    assert stats["rows"] == pytest.approx(0.8 * len(table), abs=2)
    train_positives = stats["target"]["counts"]["1"]
    assert 0 < train_positives <= int(table["churned"].sum())
    numeric, categorical = json.loads(str(answer["schema"]))
    assert set(numeric) == {
        "age", "tenure_months", "monthly_charges", "num_products", "support_calls", "balance",
    }  # fmt: skip
    assert set(categorical) == {"contract", "payment_method", "plan"}


def test_a_node_run_without_a_data_path_is_a_clear_error() -> None:
    run_config = RunConfig(data="node", target="churned").to_flwr()
    with pytest.raises(UsageError, match="has no 'data-path'"):
        client_fn(_context({"partition-id": 0}, run_config))
    with pytest.raises(UsageError, match="no 'partition-id'"):
        client_fn(_context({"data-path": "/x.csv"}, run_config))


def test_the_server_of_a_node_run_reads_no_data(tmp_path: Path) -> None:
    cfg = RunConfig(data="node", target="churned", clients=3, rounds=2)
    run_dir = engine.prepare_run(cfg, tmp_path)
    config = run_dir.read_config()
    assert (config["data"], config["client-sources"], config["partition"]) == ("node", [], "nodes")
    assert run_dir.read_status()["state"] == "running"
    with pytest.raises(UsageError, match="deployed federation"):
        engine.check(cfg)
    with pytest.raises(UsageError, match="own file is one client"):
        RunConfig(data="node", target="churned", partition="iid")
