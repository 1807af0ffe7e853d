"""Faults during a run: stops at any point of start-up, dying clients, a final write that fails.

Each runs real `fedapp simulate` processes on Flower's simulation engine: slow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow

SMALL_RUN = ["--clients", "2", "--demo-rows", "600", "--no-baseline"]


def _launch(run_dir: Path, *args: str) -> subprocess.Popen[str]:
    """``fedapp simulate`` in a process group of its own (Ray's processes join it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "fedapp", "simulate", *SMALL_RUN, *args,
         "--run-dir", str(run_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def _wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _is_actor_of(process: psutil.Process, pgid: int) -> bool:
    """Whether ``process`` is a Flower client actor of the run in process group ``pgid``."""
    try:
        return os.getpgid(process.pid) == pgid and "ClientAppActor" in " ".join(
            process.info["cmdline"] or []
        )
    except ProcessLookupError:
        return False


def _status(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


@pytest.mark.parametrize("delay", [0.0, 0.7, 1.5, 3.0, 6.0])
def test_sigterm_at_any_point_of_start_up_stops_the_run(tmp_path: Path, delay: float) -> None:
    # Prepare: a run that has just been recorded as running
    run_dir = tmp_path / "r"
    proc = _launch(run_dir, "--rounds", "50")
    try:
        _wait_for(lambda: (run_dir / "status.json").exists(), 120, "status.json")
        time.sleep(delay)

        # Execute
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=90)
        _wait_for(lambda: not _group_alive(proc.pid), 20, "the run's processes to end")
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)

    # Assert
    stderr = proc.stderr.read() if proc.stderr else ""
    status = _status(run_dir)
    assert code == 130, stderr
    assert status["state"] == "stopped", status
    assert status["error"] == "stopped (SIGTERM)"


def test_sigterm_before_the_run_directory_exists_exits_130(tmp_path: Path) -> None:
    # Prepare
    run_dir = tmp_path / "r"
    proc = _launch(run_dir, "--rounds", "50")
    time.sleep(0.3)

    # Execute
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=90)

    # Assert: no run directory, or one that says it was stopped
    assert code == 130
    if (run_dir / "status.json").exists():
        assert _status(run_dir)["state"] == "stopped"
    else:
        assert not run_dir.exists() or not any(run_dir.iterdir())


def test_a_client_process_killed_mid_run_is_named_every_round_and_counted(
    tmp_path: Path,
) -> None:
    # Prepare: three clients over two actors; once round 2 is done, kill one actor
    run_dir = tmp_path / "r"
    proc = _launch(run_dir, "--clients", "3", "--demo-rows", "900", "--rounds", "5")
    try:
        _wait_for(
            lambda: (run_dir / "status.json").exists() and _status(run_dir)["round"] >= 2,
            180, "round 2",
        )  # fmt: skip
        actors = [p for p in psutil.process_iter(["cmdline"]) if _is_actor_of(p, proc.pid)]
        assert actors, "no client actor found"

        # Execute
        actors[0].kill()
        code = proc.wait(timeout=240)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)

    # Assert: every later round names the lost clients; the summary counts them
    stderr = proc.stderr.read() if proc.stderr else ""
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    lost = [e for e in events if e.get("failures")]
    assert lost, "no round recorded a failure"
    assert all(e["failed"] and e["failed"][0]["partition"] is not None for e in lost)
    assert all("died" in f["reason"] for e in lost for f in e["failed"])
    if code == 0:
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["failed_client_rounds"] >= len({e["round"] for e in lost})
        assert "client-round(s) failed" in stderr
    else:  # a round where every client failed ends the run failed, never finished
        assert _status(run_dir)["state"] == "failed"
    assert "failed to" in stderr and "Traceback" not in stderr


def test_a_run_killed_outright_is_listed_interrupted(tmp_path: Path) -> None:
    # Prepare: a run past round 1, killed with no chance to record anything
    run_dir = tmp_path / "runs" / "r"
    proc = _launch(run_dir, "--rounds", "50")
    try:
        _wait_for(
            lambda: (run_dir / "status.json").exists() and _status(run_dir)["round"] >= 1,
            180, "round 1",
        )  # fmt: skip
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if _group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)

    # Execute
    listed = subprocess.run(
        [sys.executable, "-m", "fedapp", "runs", "--runs-dir", str(tmp_path / "runs"), "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip

    # Assert: status.json still says running; the listing knows better
    assert _status(run_dir)["state"] == "running"
    [row] = json.loads(listed.stdout)
    assert row["state"] == "interrupted"
