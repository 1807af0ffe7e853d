"""``fedapp ui`` as a real process: it serves, and it stops with its Streamlit server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT = 60.0  # seconds for the server to answer its health check
STOP_TIMEOUT = 15.0  # seconds for `fedapp ui` and its server to be gone after a signal


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _port_free(port: int) -> bool:
    """Whether a new server could listen on ``port`` (as servers do, past TIME_WAIT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    """`fedapp ui` on a free loopback port, answering; yields it, its port and its server's pid."""
    port = _free_port()
    log = tmp_path / "ui.log"
    command = [
        sys.executable, "-m", "fedapp", "ui", "--no-browser", "--port", str(port),
        "--runs-dir", str(tmp_path / "runs"),
    ]  # fmt: skip
    with log.open("wb") as out:
        ui = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=os.environ.copy(),
        )  # fmt: skip
    children: list[int] = []
    try:

        def answering() -> bool:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/_stcore/health", timeout=2
                ) as answer:
                    return answer.status == 200
            except OSError:
                return ui.poll() is not None  # ended: fail below, with its output

        assert _wait_for(answering, START_TIMEOUT), log.read_text(errors="replace")
        assert ui.poll() is None, log.read_text(errors="replace")
        children = _children(ui.pid)
        assert len(children) == 1, children
        yield ui, port, children[0]
    finally:
        for pid in [ui.pid, *children]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        ui.wait(timeout=10)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_fedapp_ui_stops_its_server_and_frees_the_port(
    served: tuple[subprocess.Popen[bytes], int, int], signum: signal.Signals
) -> None:
    # Prepare
    ui, port, server = served

    # Execute: as `kill` or a service manager sends it, to `fedapp ui` alone
    ui.send_signal(signum)

    # Assert
    assert _wait_for(lambda: ui.poll() is not None, STOP_TIMEOUT), "fedapp ui is still running"
    assert _wait_for(lambda: not _alive(server), STOP_TIMEOUT), "its Streamlit server survived"
    assert _wait_for(lambda: _port_free(port), STOP_TIMEOUT), f"port {port} is still taken"
    assert ui.returncode == 0
