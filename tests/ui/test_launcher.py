"""Starting runs as `fedapp simulate` processes, following their launch, stopping them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fedapp.errors import UsageError
from fedapp.runs import RunDir, RunState, process_alive
from fedapp.runs.checkpoints import Checkpoint, config_hash
from fedapp.settings import RunConfig
from fedapp_ui import launcher, store

# A child that says when it is ready, then sleeps; what it does on SIGTERM varies.
IGNORES_SIGTERM = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
EXITS_ON_SIGTERM = (
    "import pathlib, signal, sys, time\n"
    "def bye(signum, frame):\n"
    "    pathlib.Path(sys.argv[1]).write_text(signal.Signals(signum).name)\n"
    "    sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, bye)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
EXITS_SOON = (
    "import pathlib, sys, time\n"
    "print('ready', flush=True)\n"
    "time.sleep(0.3)\n"
    "pathlib.Path(sys.argv[1]).write_text('done')\n"
)

Spawn = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start Python children in their own session, once ready; all are killed at teardown."""
    started: list[subprocess.Popen[str]] = []

    def start(code: str, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        started.append(process)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        return process

    yield start
    for process in started:
        if process.poll() is None:  # poll() also notices a child reaped elsewhere
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


@pytest.fixture
def launched() -> Iterator[list[tuple[Path, str]]]:
    """Runs started by `launcher.launch`; their processes are killed at teardown."""
    runs: list[tuple[Path, str]] = []
    yield runs
    for root, run_id in runs:
        started = launcher.launch_of(root, run_id)
        if started is None or not process_alive(started.pid):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.killpg(started.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(started.pid, 0)


@pytest.fixture
def no_popen(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record, instead of starting, any process the launcher would start."""
    calls: list[Any] = []
    monkeypatch.setattr(launcher.subprocess, "Popen", lambda *a, **k: calls.append(a))
    return calls


def file_config(tmp_path: Path) -> RunConfig:
    """Settings for a run on a small CSV of our own."""
    csv = tmp_path / "data" / "bank.csv"
    csv.parent.mkdir()
    rows = "\n".join(f"{i},{i % 7},{i % 2}" for i in range(40))
    csv.write_text(f"CustomerId,x,Exited\n{rows}\n", encoding="utf-8")
    return RunConfig(
        data=str(csv), target="Exited", id_column="CustomerId", clients=2, rounds=2, seed=3
    )


def running_run(root: Path, name: str, pid: int, host: str | None = None) -> RunDir:
    """A run directory whose status says process ``pid`` runs it."""
    run = RunDir.create(root / name, root, "fedavg")
    run.write_config({"rounds": 3, "strategy": "fedavg", "data": "demo", "clients": 2})
    run.set_status(RunState.RUNNING, 1, 3, pid=pid, host=host or socket.gethostname(), started=1.0)
    return run


def launch_files(root: Path) -> list[str]:
    folder = root / store.UI_DIR / "launches"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# launch


@pytest.mark.parametrize("name", ["../x", ".hidden", "a/b", "my run"])
def test_launch_refuses_an_unsafe_name_and_starts_nothing(
    tmp_path: Path, no_popen: list[Any], name: str
) -> None:
    # Prepare
    root = tmp_path / "runs"

    # Execute
    with pytest.raises(UsageError) as caught:
        launcher.launch(RunConfig(), root, name)

    # Assert
    assert "not allowed" in str(caught.value)
    assert no_popen == []
    assert launch_files(root) == []
    assert not (tmp_path / "x").exists()


def test_launch_refuses_the_name_of_an_existing_run(tmp_path: Path, no_popen: list[Any]) -> None:
    # Prepare
    RunDir.create(tmp_path / "taken", tmp_path, "fedavg").write_config({"rounds": 1})

    # Execute
    with pytest.raises(UsageError) as caught:
        launcher.launch(RunConfig(), tmp_path, "taken")

    # Assert
    assert "a run called 'taken' already exists" in str(caught.value)
    assert no_popen == []
    assert launch_files(tmp_path) == []
    assert sorted(p.name for p in (tmp_path / "taken").iterdir()) == ["config.json"]


def test_launch_refuses_the_name_of_a_launch_still_starting(
    tmp_path: Path, no_popen: list[Any]
) -> None:
    # Prepare
    launches = store.ui_folder(tmp_path, "launches")
    (launches / "pending.json").write_text('{"pid": 1}', encoding="utf-8")

    # Execute
    with pytest.raises(UsageError) as caught:
        launcher.launch(RunConfig(), tmp_path, "pending")

    # Assert
    assert "already exists" in str(caught.value)
    assert no_popen == []
    assert launch_files(tmp_path) == ["pending.json"]


def test_a_name_whose_launch_never_made_its_run_can_be_used_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: a launch whose process died before creating its run directory
    launches = store.ui_folder(tmp_path, "launches")
    (launches / "again.json").write_text('{"pid": 999999999}', encoding="utf-8")
    (launches / "again.log").write_text("error: boom\n", encoding="utf-8")
    monkeypatch.setattr(launcher.subprocess, "Popen", lambda *a, **k: SimpleNamespace(pid=4242))

    # Execute
    run_id = launcher.launch(RunConfig(), tmp_path, "again")

    # Assert
    assert run_id == "again"
    assert json.loads((launches / "again.json").read_text(encoding="utf-8"))["pid"] == 4242
    assert (launches / "again.log").read_text(encoding="utf-8") == ""


def test_a_launch_that_cannot_start_reports_the_clis_error(
    tmp_path: Path, launched: list[tuple[Path, str]]
) -> None:
    # Prepare: the data file disappears between checking and launching
    cfg = file_config(tmp_path)
    Path(cfg.data).unlink()
    root = tmp_path / "runs"

    # Execute
    run_id = launcher.launch(cfg, root, "no-data")
    launched.append((root, run_id))
    deadline = time.monotonic() + 60
    started = launcher.launch_of(root, run_id)
    while started is not None and started.alive and time.monotonic() < deadline:
        time.sleep(0.05)
        started = launcher.launch_of(root, run_id)

    # Assert
    assert run_id == "no-data"
    assert started is not None
    assert started.alive is False
    assert started.error == f"{cfg.data}: no such file"
    assert f"error: {cfg.data}: no such file" in started.log
    assert not (root / run_id).exists()
    launches = root / store.UI_DIR / "launches"
    assert launch_files(root) == ["no-data.json", "no-data.log", "no-data.settings.json"]
    record = json.loads((launches / "no-data.json").read_text("utf-8"))
    assert record["pid"] == started.pid
    assert record["command"][1:4] == ["-m", "fedapp", "simulate"]
    assert record["command"][-2:] == ["--run-dir", str(root.resolve() / run_id)]


def test_the_settings_file_of_a_launch_round_trips(
    tmp_path: Path, launched: list[tuple[Path, str]]
) -> None:
    # Prepare
    cfg = file_config(tmp_path).replace(
        strategy="fedprox", strategy_params={"proximal-mu": 0.5}, run_dir="ignored"
    )
    Path(cfg.data).unlink()  # so that the process stops at once
    root = tmp_path / "runs"

    # Execute
    run_id = launcher.launch(cfg, root)
    launched.append((root, run_id))
    settings = root / store.UI_DIR / "launches" / f"{run_id}.settings.json"
    loaded = RunConfig.from_file(settings)

    # Assert
    assert re.fullmatch(r"\d{8}-\d{6}-fedprox-[0-9a-f]{4}", run_id)
    assert loaded.to_dict() == cfg.replace(run_dir=None).to_dict()
    assert loaded.run_dir is None


# launch_of and Launch


def test_launch_of_an_unknown_run_is_none(tmp_path: Path) -> None:
    # Execute / Assert
    assert launcher.launch_of(tmp_path, "never-launched") is None


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", ""])
def test_launch_of_refuses_unsafe_names(tmp_path: Path, name: str) -> None:
    # Prepare: records where an unchecked name would find them
    root = tmp_path / "runs"
    launches = store.ui_folder(root, "launches")
    (root / store.UI_DIR / "x.json").write_text('{"pid": 1}', encoding="utf-8")
    (launches / ".json").write_text('{"pid": 1}', encoding="utf-8")

    # Execute / Assert
    with pytest.raises(UsageError):
        launcher.launch_of(root, name)


@pytest.mark.parametrize(
    ("alive", "log", "expected"),
    [
        (True, "error: ignored while alive", None),
        (False, "note\nerror: data.csv: no such file\n\n", "data.csv: no such file"),
        (False, "Traceback...\nKeyError: 'x'\n", "KeyError: 'x'"),
        (False, "", "the run's process ended before creating its directory"),
    ],
)
def test_launch_error(alive: bool, log: str, expected: str | None) -> None:
    # Prepare
    started = launcher.Launch("r", 123, alive, log)

    # Execute / Assert
    assert started.error == expected


# stop


def test_stop_refuses_a_finished_run(tmp_path: Path) -> None:
    # Prepare
    run = RunDir.create(tmp_path / "done", tmp_path, "fedavg")
    run.write_config({"rounds": 2})
    run.set_status(RunState.FINISHED, 2, 2)

    # Execute
    with pytest.raises(UsageError) as caught:
        launcher.stop(tmp_path, "done")

    # Assert
    assert str(caught.value) == "run done is not running (it is finished)"


def test_stop_refuses_a_run_whose_process_is_gone(tmp_path: Path, spawn: Spawn) -> None:
    # Prepare
    finished = spawn("print('ready')")
    finished.wait(timeout=30)
    running_run(tmp_path, "died", finished.pid)

    # Execute
    with pytest.raises(UsageError) as caught:
        launcher.stop(tmp_path, "died")

    # Assert
    assert str(caught.value) == "run died is not running (it is interrupted)"


def test_stop_refuses_a_run_with_no_status_and_no_launch(tmp_path: Path) -> None:
    # Prepare
    RunDir.create(tmp_path / "bare", tmp_path, "fedavg")

    # Execute
    with pytest.raises(UsageError) as caught:
        launcher.stop(tmp_path, "bare")

    # Assert
    assert "not running on this machine" in str(caught.value)


def test_stop_refuses_an_unsafe_name(tmp_path: Path) -> None:
    # Execute / Assert
    with pytest.raises(UsageError):
        launcher.stop(tmp_path / "runs", "../runs")


def test_stop_sends_sigterm_to_the_runs_process(tmp_path: Path, spawn: Spawn) -> None:
    # Prepare
    marker = tmp_path / "signal.txt"
    child = spawn(EXITS_ON_SIGTERM, str(marker))
    running_run(tmp_path, "live", child.pid)

    # Execute
    launcher.stop(tmp_path, "live")
    child.wait(timeout=10)

    # Assert
    assert marker.read_text() == "SIGTERM"


def test_stop_sends_sigterm_to_a_launch_still_starting(tmp_path: Path, spawn: Spawn) -> None:
    # Prepare: launched, its run directory not made yet
    marker = tmp_path / "signal.txt"
    child = spawn(EXITS_ON_SIGTERM, str(marker))
    launches = store.ui_folder(tmp_path, "launches")
    (launches / "early.json").write_text(json.dumps({"pid": child.pid}), encoding="utf-8")

    # Execute
    launcher.stop(tmp_path, "early")
    child.wait(timeout=10)

    # Assert
    assert marker.read_text() == "SIGTERM"


def test_stop_refuses_a_run_recorded_on_another_host_and_signals_nothing(
    tmp_path: Path, spawn: Spawn
) -> None:
    # Prepare: a local process that happens to have the remote run's pid
    marker = tmp_path / "signal.txt"
    bystander = spawn(EXITS_ON_SIGTERM, str(marker))
    host = "elsewhere-" + os.urandom(4).hex()
    running_run(tmp_path, "remote", bystander.pid, host=host)

    # Execute
    with pytest.raises(UsageError) as caught:
        launcher.stop(tmp_path, "remote")
    time.sleep(0.3)

    # Assert
    assert str(caught.value) == f"run remote runs on {host}; stop it there"
    assert not marker.exists()
    assert bystander.poll() is None


def test_kill_if_stuck_kills_a_process_that_ignores_sigterm(tmp_path: Path, spawn: Spawn) -> None:
    # Prepare
    child = spawn(IGNORES_SIGTERM)
    run = running_run(tmp_path, "stuck", child.pid)
    os.kill(child.pid, signal.SIGTERM)

    # Execute
    launcher._kill_if_stuck(child.pid, run.path, grace=0.5)
    code = child.wait(timeout=10)

    # Assert
    assert code == -signal.SIGKILL
    status = run.read_status()
    assert status["state"] == "stopped"
    assert (status["round"], status["rounds"]) == (1, 3)
    assert status["error"] == "stopped (killed: it did not stop within 0.5 s)"
    assert status["pid"] == child.pid  # the process fields are kept


def test_kill_if_stuck_leaves_a_process_that_exits_in_time(tmp_path: Path, spawn: Spawn) -> None:
    # Prepare
    marker = tmp_path / "done.txt"
    child = spawn(EXITS_SOON, str(marker))
    run = running_run(tmp_path, "stopping", child.pid)
    before = run.status_file.read_bytes()
    start = time.monotonic()

    # Execute
    launcher._kill_if_stuck(child.pid, run.path, grace=20)

    # Assert
    assert time.monotonic() - start < 10
    assert marker.read_text() == "done"  # it ran to its end
    assert child.wait(timeout=10) == 0
    assert run.status_file.read_bytes() == before


# resume


def test_resume_starts_fedapp_resume_for_a_run_with_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: a run whose process died after its round 2 checkpoint
    run_dir = RunDir.create(tmp_path / "ghost", tmp_path, "fedavg")
    run_dir.write_config({"rounds": 5})
    run_dir.set_status(RunState.RUNNING, 2, 5, pid=999999999, host=socket.gethostname())
    Checkpoint(2, config_hash(run_dir.read_config())).save(run_dir.checkpoints_dir, keep=2)

    started: list[list[str]] = []

    def popen(command: list[str], **_: Any) -> SimpleNamespace:
        started.append(command)
        return SimpleNamespace(pid=4242)

    monkeypatch.setattr(launcher.subprocess, "Popen", popen)

    # Execute
    done = launcher.resume(tmp_path, "ghost")

    # Assert
    assert done == 2
    [command] = started
    assert command[-2:] == ["resume", str(run_dir.path.resolve())]


def test_resume_refuses_a_run_without_a_checkpoint_and_starts_nothing(
    tmp_path: Path, no_popen: list[Any]
) -> None:
    run_dir = RunDir.create(tmp_path / "ghost", tmp_path, "fedavg")
    run_dir.write_config({"rounds": 5})
    with pytest.raises(UsageError, match="has no checkpoint"):
        launcher.resume(tmp_path, "ghost")
    assert no_popen == []
