"""RunView, the one read model of a run: what its directory says, read once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from run_files import CONFIG, FIRST, SUMMARY, make_run

from fedapp.runs import (
    RunDir,
    RunState,
    RunView,
    is_pid,
    list_runs,
    process_alive,
)


@pytest.fixture
def spawn() -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start Python child processes; every one is killed and reaped at teardown."""
    started: list[subprocess.Popen[bytes]] = []

    def start(code: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:  # poll() also notices a child reaped elsewhere
            process.kill()
        process.wait(timeout=10)


@pytest.fixture
def dead_pid(spawn: Callable[[str], subprocess.Popen[bytes]]) -> int:
    """The pid of a process of ours that has ended and been reaped."""
    process = spawn("pass")
    process.wait(timeout=30)
    return process.pid


# process_alive and is_pid


def test_process_alive_for_this_process() -> None:
    # Execute / Assert
    assert process_alive(os.getpid()) is True


def test_process_alive_for_a_running_child(
    spawn: Callable[[str], subprocess.Popen[bytes]],
) -> None:
    # Prepare
    child = spawn("import time; time.sleep(60)")

    # Execute / Assert
    assert process_alive(child.pid) is True
    assert child.poll() is None  # not reaped, still ours


def test_process_alive_reaps_a_finished_child(
    spawn: Callable[[str], subprocess.Popen[bytes]],
) -> None:
    # Prepare: wait until the child has exited, without reaping it (a zombie)
    child = spawn("pass")
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)

    # Execute
    alive = process_alive(child.pid)

    # Assert
    assert alive is False
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)  # already reaped


def test_process_alive_for_a_pid_that_does_not_exist(dead_pid: int) -> None:
    # Execute / Assert
    assert process_alive(dead_pid) is False


@pytest.mark.parametrize("pid", [0, -1, True, 1.5, "1", None])
def test_process_alive_is_false_for_pids_that_are_not_a_process(pid: object) -> None:
    # Execute / Assert
    assert process_alive(pid) is False
    assert is_pid(pid) is False


# RunView.read


def test_read_reads_config_status_summary_and_events(tmp_path: Path) -> None:
    # Prepare
    run = make_run(tmp_path, "done", summary=SUMMARY)

    # Execute
    view = RunView.read(run.path)

    # Assert
    assert (view.run_id, view.path) == ("done", run.path)
    assert view.state is RunState.FINISHED
    assert (view.round, view.rounds, view.error) == (2, 2, None)
    assert view.config["client-sources"] == CONFIG["client-sources"]
    assert view.final("auc") == 0.71
    assert view.final("auc", "centralized") == 0.76
    assert view.final("auc", "gap") == -0.05
    assert view.final("pr_auc") is None
    assert view.elapsed == 17.5
    assert view.events() == [FIRST]


def test_read_ignores_the_summary_of_a_run_that_did_not_finish(tmp_path: Path) -> None:
    # Prepare
    run = make_run(tmp_path, "failed", RunState.FAILED, 1, summary=SUMMARY, error="boom")

    # Execute
    view = RunView.read(run.path)

    # Assert
    assert view.state is RunState.FAILED
    assert view.error == "boom"
    assert view.summary is None
    assert view.final("auc") is None


def test_read_treats_a_status_with_an_unknown_state_as_none_yet(tmp_path: Path) -> None:
    # Prepare
    run = make_run(tmp_path, "odd")
    run.status_file.write_text('{"state": "exploded", "round": 1}', encoding="utf-8")

    # Execute
    view = RunView.read(run.path)

    # Assert
    assert view.status == {}
    assert view.state is RunState.STARTING


def test_events_skips_a_torn_last_line(tmp_path: Path) -> None:
    # Prepare
    run = make_run(tmp_path, "r")
    with run.metrics_file.open("a", encoding="utf-8") as handle:
        handle.write('{"round": 1, "stage": "fit", "sco')

    # Execute
    events = RunView.read(run.path).events()

    # Assert
    assert events == [FIRST]


def test_privacy_and_reason_of_a_run_that_spent_its_budget(tmp_path: Path) -> None:
    # Prepare
    privacy = {"mode": "central", "epsilon": 2.9, "delta": 1e-5}
    summary = {**SUMMARY, "privacy": privacy, "reason": "privacy budget spent"}
    run = make_run(tmp_path, "dp", summary=summary, reason="privacy budget spent")

    # Execute
    view = RunView.read(run.path)

    # Assert
    assert view.privacy == privacy
    assert view.reason == "privacy budget spent"


def test_privacy_and_reason_of_a_run_without_dp(tmp_path: Path) -> None:
    # Prepare
    run = make_run(tmp_path, "plain", summary=SUMMARY)

    # Execute
    view = RunView.read(run.path)

    # Assert
    assert (view.privacy, view.reason) == (None, None)


# state


def test_state_is_interrupted_when_the_process_died_on_this_host(
    tmp_path: Path, dead_pid: int
) -> None:
    # Prepare
    host = socket.gethostname()
    run = make_run(tmp_path, "died", RunState.RUNNING, 1, pid=dead_pid, host=host, started=1.0)

    # Execute
    view = RunView.read(run.path)

    # Assert
    assert view.is_live is False
    assert view.state is RunState.INTERRUPTED
    assert view.elapsed == pytest.approx(view.status_mtime - 1.0)


def test_state_is_running_while_the_process_lives(tmp_path: Path) -> None:
    # Prepare
    started = time.time() - 30
    host = socket.gethostname()
    run = make_run(tmp_path, "live", RunState.RUNNING, pid=os.getpid(), host=host, started=started)

    # Execute
    view = RunView.read(run.path)

    # Assert
    assert view.state is RunState.RUNNING
    assert view.elapsed is not None
    assert 30 <= view.elapsed < 60


def test_state_is_running_when_the_process_is_on_another_host(
    tmp_path: Path, dead_pid: int
) -> None:
    # Prepare: a dead pid here says nothing about a process elsewhere
    elsewhere = "elsewhere-" + os.urandom(4).hex()
    run = make_run(tmp_path, "remote", RunState.RUNNING, pid=dead_pid, host=elsewhere)

    # Execute
    view = RunView.read(run.path)

    # Assert
    assert view.state is RunState.RUNNING


def test_state_is_starting_before_the_status_is_written(tmp_path: Path) -> None:
    # Prepare
    run = RunDir.create(tmp_path / "new", tmp_path, "fedavg")
    run.write_config(CONFIG)

    # Execute
    view = RunView.read(run.path)

    # Assert
    assert view.state is RunState.STARTING
    assert (view.round, view.rounds) == (0, 2)
    assert view.elapsed is None


# labels


@pytest.mark.parametrize(
    ("sources", "short", "long"),
    [
        (
            ["demo data (institution=inst-0)", "demo data (institution=inst-1)"],
            {"0": "inst-0", "1": "inst-1"},
            {"0": "institution=inst-0", "1": "institution=inst-1"},
        ),
        (
            ["/d/x.csv (#0)", "/d/x.csv (#1)"],
            {"0": "client 0", "1": "client 1"},
            {"0": "#0", "1": "#1"},
        ),
        (
            ["/data/bank_fr.csv", "/data/bank_de.parquet"],
            {"0": "bank_fr.csv", "1": "bank_de.parquet"},
            {"0": "bank_fr.csv", "1": "bank_de.parquet"},
        ),
        ([], {}, {}),
    ],
)
def test_client_labels(
    tmp_path: Path, sources: list[str], short: dict[str, str], long: dict[str, str]
) -> None:
    # Prepare
    run = make_run(tmp_path, "r", config={"client-sources": sources})
    view = RunView.read(run.path)

    # Execute
    labels = (view.client_labels(), view.client_labels(short=False))

    # Assert
    assert labels == (short, long)


@pytest.mark.parametrize(
    ("config", "data", "strategy"),
    [
        ({}, "demo, column:institution, 2 clients", "fedavg"),
        (
            {"data": "/data/bank.csv", "partition": "dirichlet:0.3", "clients": 8},
            "bank.csv, dirichlet:0.3, 8 clients",
            "fedavg",
        ),
        (
            {"client-data": ["/d/a.csv", "/d/b.csv", "/d/c.csv"], "partition": None},
            "3 files, one per client",
            "fedavg",
        ),
        (
            {"strategy": "fedprox", "strategy-params": {"proximal-mu": 0.1}},
            "demo, column:institution, 2 clients",
            "fedprox (proximal-mu 0.1)",
        ),
        (
            {
                "strategy": "weighted",
                "strategy-params": {
                    "server-learning-rate": 0.5,
                    "policy": "uniform",
                    "client-weights": "",
                },
            },
            "demo, column:institution, 2 clients",
            "weighted (server-learning-rate 0.5, policy uniform)",
        ),
    ],
)
def test_data_and_strategy_labels(
    tmp_path: Path, config: dict[str, Any], data: str, strategy: str
) -> None:
    # Prepare
    run = make_run(tmp_path, "r", config=config)

    # Execute
    view = RunView.read(run.path)

    # Assert
    assert view.data_label == data
    assert view.strategy_label == strategy


# list_runs


def test_list_runs_newest_first_and_skips_non_runs(tmp_path: Path) -> None:
    # Prepare
    make_run(tmp_path, "old", started=1_000.0)
    make_run(tmp_path, "new", started=3_000.0)
    make_run(tmp_path, "my run", started=2_000.0)  # any name the CLI's --run-dir took
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "no-config").mkdir()
    (tmp_path / "a-file.json").write_text("{}", encoding="utf-8")

    # Execute
    runs = list_runs(tmp_path)

    # Assert
    assert [r.run_id for r in runs] == ["new", "my run", "old"]
    assert [r.created for r in runs] == [3_000.0, 2_000.0, 1_000.0]


def test_list_runs_keeps_the_names_accepted(tmp_path: Path) -> None:
    # Prepare
    make_run(tmp_path, "kept")
    make_run(tmp_path, "dropped")

    # Execute
    runs = list_runs(tmp_path, accept=lambda name: name != "dropped")

    # Assert
    assert [r.run_id for r in runs] == ["kept"]


def test_list_runs_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    # Execute / Assert
    assert list_runs(tmp_path / "nothing") == []
