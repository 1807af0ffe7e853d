"""A deployed federation for the tests: real SuperLink, SuperExec and SuperNodes.

The processes start through ``fedapp superlink|superexec|supernode`` with the
flags of :mod:`fedapp.deploy.processes` (the ones the Kubernetes manifests
use): TLS, SuperNode authentication with registered keys, ServerApp in a
SuperExec. The app is submitted with ``flwr run`` and followed with ``flwr
ls``. Every process runs in its own process group, dies with the test
process, and is killed at the end, pass or fail.

The federation runs either on 127.0.0.1 or, given a :class:`netns.Network`,
with each process in the namespace of its name (``superlink``, ``superexec``,
one per institution) at its own address; ``flwr`` then runs in the
SuperLink's namespace, as on the SuperLink's machine.
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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from deploy.netns import Network

from fedapp.data.synthetic import TARGETS, make_churn_table
from fedapp.deploy import processes as deploy
from fedapp.deploy.certs import generate
from fedapp.runs import RunDir

ROOT = Path(__file__).resolve().parents[2]
INSTITUTIONS = ("bank", "telco", "clinic")
# The members of a federation's network: one namespace per process.
MEMBERS = ("superlink", "superexec", *INSTITUTIONS)
CONNECTION = "local"
FEDAPP = [sys.executable, "-m", "fedapp"]
Event = dict[str, Any]


def _die_with_this_process() -> None:
    """In the child: be killed if the test process dies without cleaning up."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (in a namespace of its own, any port is)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """Processes of one federation, each in its own process group, with logs.

    Parameters
    ----------
    root : Path
        Folder of the certificates, logs, data files and runs.
    network : Network | None
        Namespaces to run the processes in, by name; ``None`` runs all on 127.0.0.1.
    institutions : Sequence[str]
        Who runs a SuperNode, in partition order.

    """

    def __init__(
        self,
        root: Path,
        network: Network | None = None,
        institutions: Sequence[str] = INSTITUTIONS,
    ) -> None:
        self.root = root
        self.network = network
        self.institutions = tuple(institutions)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        # Each institution's SuperNode id, as the SuperLink gave it at registration.
        self.node_ids: dict[str, str] = {}
        if network is None:
            self.host, self.port = "127.0.0.1", free_port()
            names = ["localhost", self.host]
        else:
            # Alone in its namespace, the SuperLink has Flower's port to itself.
            self.host, self.port = network["superlink"].address, deploy.SUPERLINK_PORT
            names = [self.host]
        self.address = f"{self.host}:{self.port}"
        self.certs = generate(root / "certs", names, [*INSTITUTIONS, "rogue"])
        self.home = root / "flwr-cli"
        self.home.mkdir()
        # `flwr` reads its SuperLink connections from $FLWR_HOME/config.toml.
        (self.home / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
            f'address = "{self.address}"\nroot-certificates = "{self.certs.ca_cert}"\n',
            encoding="utf-8",
        )

    def env(self, home: Path) -> dict[str, str]:
        """The environment of a Flower process whose ``$FLWR_HOME`` is ``home``."""
        quiet = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
        return {**os.environ, **quiet, "FLWR_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}

    def placed(self, name: str, command: list[str]) -> list[str]:
        """``command`` as it runs for ``name``: in its namespace, when it has one."""
        if self.network is None or name not in self.network:
            return command
        return self.network[name].command(command)

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        """Start ``name``'s process, logging to ``<name>.log``."""
        home = self.root / f"home-{name}"
        home.mkdir(exist_ok=True)
        log = (self.root / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            self.placed(name, command),
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
        """What ``name``'s process has written so far."""
        return (self.root / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def stop(self, name: str, sig: int = signal.SIGTERM, grace: float = 15.0) -> None:
        """Send ``sig`` to ``name``'s process group, then SIGKILL after ``grace`` seconds."""
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
        """Stop every process, the last started first."""
        for name in reversed(list(self.procs)):
            self.stop(name, grace=5.0)

    def flwr(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the ``flwr`` CLI against this federation's SuperLink."""
        return subprocess.run(
            self.placed("superlink", ["flwr", *args]),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(self.home),
            cwd=self.root,
        )

    def healthy(self, wait: float = 5.0) -> None:
        """Wait up to ``wait`` seconds for the SuperLink's ``/health``, seen from its own host."""

        def check() -> None:
            deploy.wait_for_superlink(self.address, self.certs.ca_cert, wait)

        if self.network is None:
            check()
        else:
            self.network["superlink"].call(check)

    def node_status(self, name: str) -> str:
        """``name``'s SuperNode status as the SuperLink says it (``online``, ``offline``, ...)."""
        done = self.flwr("supernode", "list", CONNECTION, "--format", "json")
        assert done.returncode == 0, done.stdout + done.stderr
        nodes = {n["node-id"]: n["status"] for n in json.loads(done.stdout)["nodes"]}
        return str(nodes[self.node_ids[name]])

    def restart(self, name: str, wait: float = 120.0) -> None:
        """Start ``name``'s SuperNode again, on its data, once the SuperLink let the old one go.

        The SuperLink activates a node that is registered or offline only: a
        killed node stays ``online`` until its last heartbeat's patience ran out.
        """
        deadline = time.monotonic() + wait
        while self.node_status(name) == "online":
            assert time.monotonic() < deadline, f"{name} still online {wait:.0f} s on"
            time.sleep(2)
        partition = self.institutions.index(name)
        self.start(name, self.supernode(name, partition, self.root / f"{name}.csv"))
        while self.node_status(name) != "online":
            assert self.procs[name].poll() is None, self.log(name)[-2000:]
            assert time.monotonic() < deadline, f"{name} not online {wait:.0f} s on"
            time.sleep(1)

    def supernode(self, name: str, partition_id: int, data_path: Path | str) -> list[str]:
        """The command of ``name``'s SuperNode, which reads ``data_path`` as ``partition_id``."""
        private_key, _ = self.certs.node_keys[name]
        args = deploy.supernode_args(
            self.address,
            {"data-path": str(data_path), "partition-id": partition_id},
            deploy.NodeCredentials(str(self.certs.ca_cert), str(private_key)),
            f"127.0.0.1:{free_port()}",
            port=free_port(),
        )
        return [*FEDAPP, "supernode", *args]


def _start(cluster: Cluster) -> None:
    """SuperLink, SuperExec, the institutions' keys and files, then their SuperNodes."""
    tls = deploy.ServerTls(
        str(cluster.certs.ca_cert),
        str(cluster.certs.superlink_cert),
        str(cluster.certs.superlink_key),
    )
    database = str(cluster.root / "superlink.db")
    args = deploy.superlink_args(tls, database, host=cluster.host, port=cluster.port)
    cluster.start("superlink", [*FEDAPP, "superlink", *args])
    cluster.healthy(wait=60)
    exec_args = deploy.superexec_args(
        cluster.address, str(cluster.certs.ca_cert), f"127.0.0.1:{free_port()}"
    )
    cluster.start("superexec", [*FEDAPP, "superexec", *exec_args])
    for name in cluster.institutions:
        _, public = cluster.certs.node_keys[name]
        done = cluster.flwr("supernode", "register", str(public), CONNECTION, "--format", "json")
        assert done.returncode == 0, done.stdout + done.stderr
        registered = json.loads(done.stdout)
        assert registered["success"] is True
        cluster.node_ids[name] = str(registered["node-id"])
    table = make_churn_table(300 * len(cluster.institutions), len(cluster.institutions), seed=3)
    for i, name in enumerate(cluster.institutions):
        rows = table[table["institution"] == sorted(table["institution"].unique())[i]]
        rows.drop(columns=["institution", *TARGETS[1:]]).to_csv(
            cluster.root / f"{name}.csv", index=False
        )
    # The institutions join now, while the tests' first checks run, as in a
    # cluster where SuperNodes wait for work.
    for i, name in enumerate(cluster.institutions):
        cluster.start(name, cluster.supernode(name, i, cluster.root / f"{name}.csv"))


@contextlib.contextmanager
def federation(
    root: Path, network: Network | None = None, institutions: Sequence[str] = INSTITUTIONS
) -> Iterator[Cluster]:
    """A running federation of ``institutions``, stopped at the end, pass or fail."""
    cluster = Cluster(root, network, institutions)
    try:
        _start(cluster)
        yield cluster
    finally:
        cluster.stop_all()


def run_status(cluster: Cluster, run_id: int) -> str:
    """The run's status as ``flwr ls`` says it, e.g. ``finished:completed``."""
    done = cluster.flwr("ls", CONNECTION, "--run-id", str(run_id), "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    [run] = json.loads(done.stdout)["runs"]
    return str(run["status"])


def run_dir(runs_root: Path) -> RunDir | None:
    """The one run directory under ``runs_root``, once the ServerApp has made it."""
    dirs = [p.parent for p in runs_root.glob("*/status.json")]
    return RunDir(dirs[0]) if dirs else None


def submit(cluster: Cluster, settings: str) -> int:
    """``flwr run`` the project's Flower App with run config ``settings``; its run id."""
    done = cluster.flwr("run", str(ROOT), CONNECTION, "--run-config", settings, "--format", "json",
                        timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return int(json.loads(done.stdout)["run-id"])


def follow(
    cluster: Cluster,
    run_id: int,
    runs_root: Path,
    react: Callable[[list[Event], dict[str, Any]], None],
    timeout: float = 300,
) -> str:
    """Follow a run to its end, showing ``react`` its events and status at every poll.

    The run directory is polled every second (cheap); ``flwr ls`` once it
    says the run ended, until the SuperLink says so too.

    Returns
    -------
    str
        The run's final status as ``flwr ls`` says it.

    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = run_dir(runs_root)
        status = found.read_status() if found else {}
        react(list(found.read_metrics()) if found else [], status)
        if status and status["state"] != "running":
            break
        time.sleep(1)
    ended = run_status(cluster, run_id)
    while not ended.startswith("finished") and time.monotonic() < deadline:
        time.sleep(2)
        ended = run_status(cluster, run_id)
    return ended
