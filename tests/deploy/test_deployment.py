"""A deployed federation on 127.0.0.1: real SuperLink, SuperExec and SuperNodes.

The federation is :mod:`cluster`'s (TLS, SuperNode authentication with
registered keys, ServerApp in a SuperExec). These tests need no run; a run
through faults (a pulled cable, a killed SuperNode) is in
``test_network_faults.py``, where every process has an address of its own.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from deploy.cluster import CONNECTION, FEDAPP, INSTITUTIONS, Cluster, federation, free_port

from fedapp.deploy import processes as deploy

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with federation(tmp_path_factory.mktemp("deployment")) as cluster:
        yield cluster


def test_a_supernode_with_an_unregistered_key_is_refused(cluster: Cluster) -> None:
    rogue = cluster.start("rogue", cluster.supernode("rogue", 9, cluster.root / "bank.csv"))
    code = rogue.wait(timeout=90)
    assert code != 0
    assert "Failed to activate SuperNode" in cluster.log("rogue")
    nodes = cluster.flwr("supernode", "list", CONNECTION, "--format", "json")
    assert len(json.loads(nodes.stdout)["nodes"]) == len(INSTITUTIONS)  # the registered ones
    cluster.healthy()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"data_path": "/no/such/bank.csv"},
            "node config data-path: /no/such/bank.csv: no such file",
        ),
        ({"address": "127.0.0.1:1"}, "cannot reach the SuperLink at 127.0.0.1:1"),
        ({"ca": "/no/such/ca.crt"}, "--root-certificates: /no/such/ca.crt: no such file"),
        ({"key": "/no/such/key"}, "--auth-supernode-private-key: /no/such/key: no such file"),
    ],
)
def test_bad_input_stops_one_supernode_with_one_line(
    cluster: Cluster, change: dict[str, str], expected: str
) -> None:
    private_key, _ = cluster.certs.node_keys["bank"]
    args = deploy.supernode_args(
        change.get("address", cluster.address),
        {"data-path": change.get("data_path", str(cluster.root / "bank.csv")), "partition-id": 0},
        deploy.NodeCredentials(change.get("ca", str(cluster.certs.ca_cert)),
                               change.get("key", str(private_key))),
        f"127.0.0.1:{free_port()}",
        port=free_port(),
    )  # fmt: skip
    done = subprocess.run(
        [*FEDAPP, "supernode", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**cluster.env(cluster.home), "FEDAPP_SUPERLINK_WAIT": "3"},
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    cluster.healthy()  # the SuperLink keeps serving
