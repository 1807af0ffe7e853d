"""Faults of a real network: a deployed federation whose every process has its own address.

The SuperLink, the SuperExec and each SuperNode run in network namespaces of
their own (:mod:`netns`), linked through a switch on ``10.201.0.0/24``, with
the TLS and SuperNode authentication of :mod:`cluster`. One run of the
project's Flower App goes through two faults, each the subject of one test:

* (a) once the clients' statistics are in, ``telco``'s cable is pulled
  (its ``eth0`` set down) and plugged back in when round 1's training has
  ended: round 1 records ``telco`` as failed, round 2 trains with it again;
* (b) ``bank``'s SuperNode is killed (SIGKILL) after round 2's training:
  round 2's evaluation ends at round-timeout, not when the SuperLink would
  notice the missing heartbeat (30 s heartbeats, 2 missed: up to 60 s).

Both come from one run, since every run pays a ServerApp start and every
message a cold ClientApp (TensorFlow): one run with two nodes, about three
minutes, instead of two runs. A third test, after them, restarts ``bank``,
kills the ServerApp of a run of its own (the SuperExec's ``flwr-serverapp``
child, in the ``superexec`` namespace) once round 1's checkpoint is on disk,
and submits the run again with ``resume=true``: it finishes from the
checkpoint with every round recorded once.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from deploy import netns
from deploy.cluster import INSTITUTIONS, Cluster, Event, federation, follow, run_dir, submit

from fedapp.flower.reports import UNAVAILABLE_REASON
from fedapp.runs import RunDir
from fedapp.runs.checkpoints import rounds_in

pytestmark = pytest.mark.slow

# Two SuperNodes: each message starts a ClientApp process (TensorFlow's
# import alone takes ~8 s), and on two cores a round's stage takes ~19 s with
# two of them, ~25 s with three.
NODES = INSTITUTIONS[:2]
CUT, KILLED = "telco", "bank"
# Long enough for a healthy node's cold ClientApp (~19 s, measured), short
# enough that the pulled cable (down ~32 s) never outlasts a node's last
# heartbeat (60 s after it, and heartbeats come every 17.5-22.5 s), so the
# SuperLink keeps counting the cut node as online and asks it for work; and
# below the 37.5 s after which a killed node's missed heartbeat could end a
# round first, so that (b) tells the two apart.
ROUND_TIMEOUT = 30.0
ROUNDS = 2


@pytest.fixture(scope="module")
def network() -> Iterator[netns.Network]:
    reason = netns.missing()
    if reason is not None:
        pytest.skip(f"needs network namespaces: {reason}")
    net = netns.Network(["superlink", "superexec", *NODES])
    try:
        yield net
    finally:
        net.close()
        assert not net.leftovers(), f"namespaces left behind: {net.leftovers()}"


@pytest.fixture(scope="module")
def cluster(network: netns.Network, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with federation(tmp_path_factory.mktemp("netns-deployment"), network, NODES) as cluster:
        yield cluster


@dataclass
class Faults:
    """What happens to the federation as the run goes: the cable, then the kill.

    Called with the run's events and status at every poll; each step
    happens once, at the first poll that sees its trigger.
    """

    cluster: Cluster
    steps: list[str] = field(default_factory=list)

    def __call__(self, events: list[Event], status: dict[str, Any]) -> None:
        network = self.cluster.network
        assert network is not None
        phase = status.get("phase") or {}
        if not self.steps and phase.get("name") == "statistics" and phase["done"] == phase["total"]:
            # Before round 1's training goes out, or at most a poll after: a
            # cold ClientApp could not have sent its result in that time.
            network[CUT].set_link(up=False)
            self.steps.append("cut")
        elif self.steps == ["cut"] and _find(events, 1, "fit"):
            network[CUT].set_link(up=True)
            self.steps.append("restored")
        elif self.steps == ["cut", "restored"] and _find(events, 2, "fit"):
            self.cluster.stop(KILLED, sig=signal.SIGKILL)
            self.steps.append("killed")


def _find(events: list[Event], round_: int, stage: str) -> Event | None:
    """The round's fit event, or its clients' (federated) evaluation."""
    return next(
        (e for e in events if (e["round"], e["stage"], e["scope"]) == (round_, stage, "federated")),
        None,
    )


@dataclass(frozen=True)
class FaultedRun:
    """The run that went through the faults, as the tests read it."""

    run: RunDir
    status: str
    steps: list[str]
    events: list[Event]

    def event(self, round_: int, stage: str) -> Event:
        found = _find(self.events, round_, stage)
        assert found is not None, f"no {stage} event of round {round_}: {self.events}"
        return found


def _settings(runs_root: Path, rounds: int) -> str:
    """The run config of a run of the federation's nodes, recorded under ``runs_root``."""
    return (
        f"data='node' target='churned' clients={len(NODES)} num-server-rounds={rounds} "
        f"local-epochs=1 batch-size=64 round-timeout={ROUND_TIMEOUT} runs-dir='{runs_root}'"
    )


@pytest.fixture(scope="module")
def faulted_run(cluster: Cluster) -> Iterator[FaultedRun]:
    # Prepare
    runs_root = cluster.root / "runs"
    settings = _settings(runs_root, ROUNDS)
    faults = Faults(cluster)

    # Execute
    run_id = submit(cluster, settings)
    try:
        status = follow(cluster, run_id, runs_root, faults, timeout=300)
    finally:
        if faults.steps == ["cut"]:
            assert cluster.network is not None
            cluster.network[CUT].set_link(up=True)  # the federation stays whole for what follows
    found = run_dir(runs_root)
    assert found is not None, cluster.log("superexec")[-3000:]
    yield FaultedRun(found, status, faults.steps, list(found.read_metrics()))


@pytest.mark.timeout(420)
def test_a_node_whose_link_is_cut_drops_out_and_rejoins_when_it_is_restored(
    faulted_run: FaultedRun, cluster: Cluster
) -> None:
    run = faulted_run.run
    cut = str(NODES.index(CUT))

    # Assert: the run finished, deployed, with its model, summary and card.
    assert faulted_run.steps[:2] == ["cut", "restored"], faulted_run.events
    assert faulted_run.status == "finished:completed", cluster.log("superexec")[-3000:]
    assert run.read_status()["state"] == "finished"
    for stage in ("fit", "evaluate"):
        assert sorted(e["round"] for e in faulted_run.events if e["stage"] == stage) == [1, 2]
    assert run.read_config()["round-timeout"] == ROUND_TIMEOUT
    assert run.read_config()["data"] == "node"
    assert run.model_file.exists()
    clients = run.read_summary()["clients"]
    assert set(clients) == {"0", "1"} and all(c["train"] > 0 for c in clients.values())
    assert "| 0 |  |" in run.model_card_file.read_text(encoding="utf-8")
    # Assert: the round trained while the cable was out counts the node as failed ...
    first = faulted_run.event(1, "fit")
    assert set(first["clients"]) == {"0"}
    assert [f["partition"] for f in first["failed"]] == [int(cut)]
    # ... and once it is back, the node trains again.
    assert set(faulted_run.event(2, "fit")["clients"]) == {"0", cut}
    cluster.healthy()


@pytest.mark.timeout(420)
def test_a_killed_node_holds_a_round_until_round_timeout_not_the_heartbeat(
    faulted_run: FaultedRun, cluster: Cluster
) -> None:
    killed = NODES.index(KILLED)
    fit, evaluation = faulted_run.event(2, "fit"), faulted_run.event(2, "evaluate")

    # Assert: the kill came within a poll of round 2's training; the
    # evaluation, which asked the dead node too, waited for it exactly as long
    # as round-timeout allows, where a missed heartbeat would end it only
    # 37.5-60 s after the kill.
    assert faulted_run.steps == ["cut", "restored", "killed"], faulted_run.events
    assert ROUND_TIMEOUT <= evaluation["time"] - fit["time"] < ROUND_TIMEOUT + 5
    assert evaluation["failed"] == [{"partition": killed, "reason": UNAVAILABLE_REASON}]
    assert set(evaluation["clients"]) == {str(NODES.index(CUT))}  # the living node's score
    assert cluster.procs[KILLED].poll() == -signal.SIGKILL
    cluster.healthy()


def _server_apps(cluster: Cluster) -> list[int]:
    """The pids of the ServerApps the SuperExec runs (``flwr-serverapp``, in its namespace)."""
    assert cluster.network is not None
    found = []
    for pid in cluster.network["superexec"].pids():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue  # ended since it was listed
        if any(arg.endswith(b"flwr-serverapp") for arg in argv[:2]):
            found.append(pid)
    return found


def _kill_server_app_after(cluster: Cluster, runs_root: Path, checkpoint: int) -> int:
    """SIGKILL the run's ServerApp once its checkpoint of round ``checkpoint`` is on disk.

    Returns
    -------
    int
        The round the run's newest checkpoint was of when the ServerApp died.

    """
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = run_dir(runs_root)
        done = rounds_in(found.checkpoints_dir) if found else []
        if done and done[-1] >= checkpoint:
            [pid] = _server_apps(cluster)
            os.kill(pid, signal.SIGKILL)
            assert found is not None
            return rounds_in(found.checkpoints_dir)[-1]
        time.sleep(0.5)
    raise AssertionError(f"no checkpoint of round {checkpoint}: {cluster.log('superexec')[-3000:]}")


@pytest.mark.timeout(600)
def test_a_killed_server_app_resumed_from_its_checkpoint_records_every_round_once(
    faulted_run: FaultedRun, cluster: Cluster
) -> None:
    # Prepare: the federation whole again (the node killed above restarted).
    assert faulted_run.steps[-1] == "killed"
    cluster.restart(KILLED)
    runs_root, rounds = cluster.root / "resumed-runs", 3
    settings = _settings(runs_root, rounds)

    # Execute: the ServerApp dies after round 1's checkpoint, then the same
    # run config goes in again with resume=true.
    first = submit(cluster, settings)
    resumed_from = _kill_server_app_after(cluster, runs_root, checkpoint=1)
    second = submit(cluster, f"{settings} resume=true")
    status = follow(cluster, second, runs_root, lambda events, status: None, timeout=400)

    # Assert: one run directory, finished, every round's events once.
    assert first != second
    assert status == "finished:completed", cluster.log("superexec")[-3000:]
    run = run_dir(runs_root)
    assert run is not None and len(list(runs_root.glob("*/status.json"))) == 1
    assert run.read_status()["state"] == "finished"
    events = list(run.read_metrics())
    for stage in ("fit", "evaluate"):
        done = [e["round"] for e in events if (e["stage"], e["scope"]) == (stage, "federated")]
        assert sorted(done) == [1, 2, 3]
    keys = Counter((e["round"], e["stage"], e["scope"]) for e in events)
    assert [k for k, n in keys.items() if n > 1] == [], events
    [resumed] = [e for e in events if e["stage"] == "resumed"]
    assert resumed["round"] == resumed_from and resumed["from_state"] == "interrupted"
    assert rounds_in(run.checkpoints_dir)[-1] == rounds
    assert run.model_file.exists()
    # The resumed run's ServerApp exits too, moments after the SuperLink's "finished".
    deadline = time.monotonic() + 30
    while _server_apps(cluster) and time.monotonic() < deadline:
        time.sleep(1)
    assert _server_apps(cluster) == []
    cluster.healthy()
