"""A deployed federation on 127.0.0.1: real SuperLink, SuperExec and SuperNodes.

The processes start through ``fedapp superlink|superexec|supernode`` with the
flags of :mod:`fedapp.deploy.processes` (the ones the Kubernetes manifests use): TLS,
SuperNode authentication with registered keys, ServerApp in a SuperExec. The
app is submitted with ``flwr run`` and followed with ``flwr ls``. Every
process runs in its own process group and is killed at the end, pass or fail.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedapp.data.synthetic import TARGETS, make_churn_table
from fedapp.deploy import processes as deploy
from fedapp.deploy.certs import generate
from fedapp.runs import RunDir

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
INSTITUTIONS = ("bank", "telco", "clinic")
CONNECTION = "local"
FEDAPP = [sys.executable, "-m", "fedapp"]


def _die_with_this_process() -> None:
    """In the child: be killed if the test process dies without cleaning up."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """Processes of one federation, each in its own process group, with logs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.certs = generate(root / "certs", ["localhost", "127.0.0.1"], [*INSTITUTIONS, "rogue"])
        self.home = root / "flwr-cli"
        self.home.mkdir()
        # `flwr` reads its SuperLink connections from $FLWR_HOME/config.toml.
        (self.home / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
            f'address = "{self.address}"\nroot-certificates = "{self.certs.ca_cert}"\n',
            encoding="utf-8",
        )

    def env(self, home: Path) -> dict[str, str]:
        quiet = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
        return {**os.environ, **quiet, "FLWR_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        home = self.root / f"home-{name}"
        home.mkdir(exist_ok=True)
        log = (self.root / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(home),
            cwd=self.root,
            start_new_session=True,  # its own group: its children die with it
            preexec_fn=_die_with_this_process,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def stop(self, name: str, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
        proc = self.procs[name]
        for s in (sig, signal.SIGKILL):
            try:
                os.killpg(proc.pid, s)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=grace)
                break
            except subprocess.TimeoutExpired:
                continue
        # Children of the group may outlive its leader; SIGKILL what is left.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name, grace=5.0)

    def flwr(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["flwr", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(self.home),
            cwd=self.root,
        )

    def supernode(self, name: str, partition_id: int, data_path: Path | str) -> list[str]:
        private_key, _ = self.certs.node_keys[name]
        args = deploy.supernode_args(
            self.address,
            {"data-path": str(data_path), "partition-id": partition_id},
            deploy.NodeCredentials(str(self.certs.ca_cert), str(private_key)),
            f"127.0.0.1:{_free_port()}",
            port=_free_port(),
        )
        return [*FEDAPP, "supernode", *args]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("deployment"))
    try:
        tls = deploy.ServerTls(
            str(cluster.certs.ca_cert),
            str(cluster.certs.superlink_cert),
            str(cluster.certs.superlink_key),
        )
        database = str(cluster.root / "superlink.db")
        args = deploy.superlink_args(tls, database, host="127.0.0.1", port=cluster.port)
        cluster.start("superlink", [*FEDAPP, "superlink", *args])
        deploy.wait_for_superlink(cluster.address, cluster.certs.ca_cert, wait=60)
        exec_args = deploy.superexec_args(
            cluster.address, str(cluster.certs.ca_cert), f"127.0.0.1:{_free_port()}"
        )
        cluster.start("superexec", [*FEDAPP, "superexec", *exec_args])
        for name in INSTITUTIONS:
            _, public = cluster.certs.node_keys[name]
            done = cluster.flwr(
                "supernode", "register", str(public), CONNECTION, "--format", "json"
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert json.loads(done.stdout)["success"] is True
        table = make_churn_table(900, len(INSTITUTIONS), seed=3)
        for i, name in enumerate(INSTITUTIONS):
            rows = table[table["institution"] == sorted(table["institution"].unique())[i]]
            rows.drop(columns=["institution", *TARGETS[1:]]).to_csv(
                cluster.root / f"{name}.csv", index=False
            )
        # The institutions join now, while the checks below run, as in a cluster
        # where SuperNodes wait for work.
        for i, name in enumerate(INSTITUTIONS):
            cluster.start(name, cluster.supernode(name, i, cluster.root / f"{name}.csv"))
        yield cluster
    finally:
        cluster.stop_all()


def _healthy(cluster: Cluster) -> None:
    deploy.wait_for_superlink(cluster.address, cluster.certs.ca_cert, wait=5)


def test_a_supernode_with_an_unregistered_key_is_refused(cluster: Cluster) -> None:
    rogue = cluster.start("rogue", cluster.supernode("rogue", 9, cluster.root / "bank.csv"))
    code = rogue.wait(timeout=90)
    assert code != 0
    assert "Failed to activate SuperNode" in cluster.log("rogue")
    nodes = cluster.flwr("supernode", "list", CONNECTION, "--format", "json")
    assert len(json.loads(nodes.stdout)["nodes"]) == len(INSTITUTIONS)  # the registered ones
    _healthy(cluster)


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
        f"127.0.0.1:{_free_port()}",
        port=_free_port(),
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
    _healthy(cluster)  # the SuperLink keeps serving


def _run_status(cluster: Cluster, run_id: int) -> str:
    done = cluster.flwr("ls", CONNECTION, "--run-id", str(run_id), "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    [run] = json.loads(done.stdout)["runs"]
    return str(run["status"])


def _run_dir(runs_root: Path) -> RunDir | None:
    dirs = [p.parent for p in runs_root.glob("*/status.json")]
    return RunDir(dirs[0]) if dirs else None


@pytest.mark.timeout(420)
def test_flwr_run_finishes_when_a_supernode_dies_mid_run(cluster: Cluster) -> None:
    # Prepare: three institutions are online; the run needs two (min-available 2).
    # A round waits at most `timeout` seconds for a reply: long enough for a
    # SuperNode's first ClientApp to start (TensorFlow, its data), and the
    # bound on how long a killed node can hold a round.
    runs_root = cluster.root / "runs"
    rounds, timeout = 2, 60
    settings = (
        f"data='node' target='churned' clients=2 num-server-rounds={rounds} "
        f"local-epochs=1 batch-size=64 round-timeout={timeout} runs-dir='{runs_root}'"
    )

    # Execute
    done = cluster.flwr("run", str(ROOT), CONNECTION, "--run-config", settings, "--format", "json",
                        timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    run_id = int(json.loads(done.stdout)["run-id"])
    deadline = time.monotonic() + 300
    killed = False
    # The run directory is polled (cheap); `flwr ls` once it says the run ended.
    while time.monotonic() < deadline:
        run_dir = _run_dir(runs_root)
        events = list(run_dir.read_metrics()) if run_dir else []
        if not killed and any(e["round"] == 1 and e["stage"] == "fit" for e in events):
            # Mid-run, after round 1's training; killed, it cannot leave the federation.
            cluster.stop(INSTITUTIONS[-1], sig=signal.SIGKILL)
            killed = True
        if run_dir and run_dir.read_status()["state"] != "running":
            break
        time.sleep(1)
    status = _run_status(cluster, run_id)
    while not status.startswith("finished") and time.monotonic() < deadline:
        time.sleep(2)
        status = _run_status(cluster, run_id)

    # Assert
    assert killed, "the run never reached round 1"
    assert status == "finished:completed", status + cluster.log("superexec")[-3000:]
    [run_dir] = [RunDir(p.parent) for p in runs_root.glob("*/status.json")]
    assert run_dir.read_status()["state"] == "finished"
    events = list(run_dir.read_metrics())
    for stage in ("fit", "evaluate"):
        assert sorted(e["round"] for e in events if e["stage"] == stage) == [1, 2]
    last_fit = next(e for e in events if e["stage"] == "fit" and e["round"] == rounds)
    assert set(last_fit["clients"]) == {"0", "1"}  # the dead institution is gone
    first_fit = next(e for e in events if e["stage"] == "fit" and e["round"] == 1)
    assert set(first_fit["clients"]) == {"0", "1", "2"}
    # The kill came within a poll of round 1's training; its evaluation, which
    # asked the dead node too, ended within the round timeout.
    first_evaluation = next(
        e for e in events if e["stage"] == "evaluate" and e["scope"] == "federated"
    )
    assert first_evaluation["time"] - first_fit["time"] < timeout + 10
    assert run_dir.read_config()["round-timeout"] == timeout
    assert run_dir.model_file.exists()
    assert run_dir.read_config()["data"] == "node"
    # Deployed too: each node's training rows from its statistics, and the model card.
    clients = run_dir.read_summary()["clients"]
    assert set(clients) == {"0", "1", "2"} and all(c["train"] > 0 for c in clients.values())
    assert "| 0 |  |" in run_dir.model_card_file.read_text(encoding="utf-8")
    _healthy(cluster)
