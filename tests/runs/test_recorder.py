"""The Recorder: the one writer of a run's events, status and summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fedapp.runs import Event, Recorder, RunDir, RunState, Scope, Stage


@dataclass(frozen=True)
class WatchedRunDir(RunDir):
    """A run directory that notes, at each status change, whether the summary exists."""

    seen: list[tuple[str, bool]] = field(default_factory=list)

    def set_status(self, state: RunState | str, *args: Any, **kwargs: Any) -> None:
        self.seen.append((str(state), self.summary_file.exists()))
        super().set_status(state, *args, **kwargs)


@pytest.fixture
def run(tmp_path: Path) -> WatchedRunDir:
    """A fresh run directory, started for 3 rounds."""
    run = WatchedRunDir(tmp_path / "r")
    run.path.mkdir()
    run.mark_started(3)
    return run


def test_event_is_appended_and_passed_to_the_listener(run: WatchedRunDir) -> None:
    # Prepare
    heard: list[Event] = []
    recorder = Recorder(run, 3, on_event=heard.append)

    # Execute
    event = recorder.event(1, Stage.FIT, Scope.FEDERATED, {"train-loss": 0.4},
                           {"0": {"examples": 10}}, failures=0)  # fmt: skip

    # Assert
    assert list(run.read_events()) == [event]
    assert heard == [event]
    assert (event.round, event.extra) == (1, {"failures": 0})


def test_events_are_appended_in_order(run: WatchedRunDir) -> None:
    # Prepare
    recorder = Recorder(run, 3)

    # Execute
    recorder.event(0, Stage.EVALUATE, Scope.CENTRALIZED, {"auc": 0.5})
    recorder.event(1, Stage.EVALUATE, Scope.CENTRALIZED, {"auc": 0.6})

    # Assert
    assert [(e.round, e.metrics["auc"]) for e in run.read_events()] == [(0, 0.5), (1, 0.6)]


def test_progress_marks_the_round_running(run: WatchedRunDir) -> None:
    # Prepare
    recorder = Recorder(run, 3)

    # Execute
    recorder.progress(2)

    # Assert
    status = run.read_status()
    assert (status["state"], status["round"], status["rounds"]) == ("running", 2, 3)


def test_finish_writes_the_summary_before_the_status(run: WatchedRunDir) -> None:
    # Prepare
    recorder = Recorder(run, 3)

    # Execute
    recorder.finish({"federated": {"auc": 0.7}}, 2, "privacy budget spent")

    # Assert
    assert run.seen[-1] == ("finished", True)
    assert run.read_summary() == {"federated": {"auc": 0.7}}
    status = run.read_status()
    assert (status["state"], status["round"], status["reason"]) == (
        "finished", 2, "privacy budget spent",
    )  # fmt: skip


@pytest.mark.parametrize("state", [RunState.FAILED, RunState.STOPPED])
def test_end_records_the_round_reached_and_why(run: WatchedRunDir, state: RunState) -> None:
    # Prepare
    recorder = Recorder(run, 3)
    recorder.progress(2)

    # Execute
    recorder.end(state, "boom")

    # Assert
    status = run.read_status()
    assert (status["state"], status["round"], status["rounds"], status["error"]) == (
        str(state), 2, 3, "boom",
    )  # fmt: skip


@pytest.mark.parametrize(
    "state", [RunState.FINISHED, RunState.RUNNING, RunState.INTERRUPTED, RunState.STARTING]
)
def test_end_refuses_other_states(run: WatchedRunDir, state: RunState) -> None:
    # Prepare
    recorder = Recorder(run, 3)
    before = run.status_file.read_bytes()

    # Execute
    with pytest.raises(ValueError) as caught:
        recorder.end(state, "why")

    # Assert
    assert "ends failed or stopped" in str(caught.value)
    assert run.status_file.read_bytes() == before


@pytest.fixture
def full_disk(tmp_path: Path):
    """A 512 KiB file system of its own (tmpfs; root mounts it, as CI runs)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path) -> None:
    """Write into ``folder`` until its file system has no byte left."""
    with (folder / "ballast").open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(bytes(4096))
        except OSError:
            pass


def test_a_run_the_full_disk_ends_still_records_how_it_ended(full_disk: Path) -> None:
    # Prepare: a running run, then a disk with no space left
    run = RunDir.create(full_disk / "r", full_disk, "fedavg")
    run.mark_started(3)
    recorder = Recorder(run, 3)
    _fill(full_disk)
    with pytest.raises(OSError):
        run.write_summary({"rounds": 3})  # the disk is really full

    # Execute
    recorder.end(RunState.FAILED, "OSError: [Errno 28] No space left on device")

    # Assert
    status = run.read_status()
    assert status["state"] == "failed" and "No space left" in status["error"]
    assert not run.reserve_file.exists()


def test_a_status_that_cannot_be_written_leaves_the_reason_on_stderr(
    full_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Prepare: the reserve is used up already, and the disk is full
    run = RunDir.create(full_disk / "r", full_disk, "fedavg")
    run.mark_started(3)
    run.reserve_file.unlink()
    _fill(full_disk)

    # Execute: the caller's own exception must not be masked
    Recorder(run, 3).end(RunState.STOPPED, "stopped (SIGTERM)")

    # Assert
    err = capsys.readouterr().err
    assert "could not record run r as stopped" in err and "stopped (SIGTERM)" in err
    assert run.read_status()["state"] == "running"


def test_a_phase_goes_into_the_status_until_the_next_round(run: WatchedRunDir) -> None:
    # Prepare
    from fedapp.runs import Phase, RunView

    phases: list[Phase] = []
    recorder = Recorder(run, 3, on_phase=phases.append)

    # Execute
    recorder.phase("statistics", "collecting the clients' statistics", 2, 3)
    during = RunView.read(run.path).phase
    recorder.progress(1)

    # Assert
    assert during == {"name": "statistics", "label": "collecting the clients' statistics",
                      "done": 2, "total": 3}  # fmt: skip
    assert phases == [Phase("statistics", "collecting the clients' statistics", 2, 3)]
    assert RunView.read(run.path).phase is None
