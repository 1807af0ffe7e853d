"""``fedapp ui``: serve the Streamlit UI."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

import fedapp_ui
from fedapp.cli.app import app
from fedapp.cli.output import console, fail, warn

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# Signals `fedapp ui` passes on to its server: whoever stops the command
# (Ctrl-C, `kill`, a service manager) stops what it serves.
_FORWARDED = (signal.SIGTERM, signal.SIGINT)
# Seconds the server may take to stop after a forwarded signal before it is killed.
STOP_GRACE_SECONDS = 10.0
# How the server ends when asked to stop: cleanly, or by the forwarded signal.
_STOPPED_CODES = {0, 130, 143, *(-s for s in _FORWARDED)}


@app.command()
def ui(
    runs_dir: Annotated[
        Path, typer.Option(help="Folder of run directories: where runs are read and written.")
    ] = Path("runs"),
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Folder whose CSV/Parquet files may be picked by path in the UI. "
            "[default: the runs folder]"
        ),
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8501,
    host: Annotated[
        str,
        typer.Option(help="Address to bind. Anything but loopback lets others start runs."),
    ] = "127.0.0.1",
    browser: Annotated[
        bool, typer.Option("--browser/--no-browser", help="Open the UI in a browser.")
    ] = True,
) -> None:
    """Serve the web UI: launch simulations, watch them live, compare runs."""
    runs = runs_dir.resolve()
    data = (data_dir or runs_dir).resolve()
    try:
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise fail(f"cannot create the runs folder {runs}: {err.strerror}") from None
    if not data.is_dir():
        raise fail(f"--data-dir {data} is not a folder")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As the server binds: connections of a server stopped a moment ago,
        # still in TIME_WAIT, do not make the port busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            message = f"cannot serve on {host}:{port}: {err.strerror}; try another --port"
            raise fail(message) from None
    if host not in _LOOPBACK:
        warn(f"serving on {host}: anyone who can reach it can start runs and read their results")
    script = Path(fedapp_ui.__file__).with_name("app.py")
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", host, "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none", "--global.developmentMode", "false",
        "--client.toolbarMode", "minimal", "--theme.base", "light",
        "--theme.primaryColor", "#2563eb",
    ]  # fmt: skip
    env = {**os.environ, "FEDAPP_UI_RUNS_DIR": str(runs)}
    env.pop("FEDAPP_UI_DATA_DIR", None)
    if data_dir is not None:  # without it, the UI says which --data-dir a path needs
        env["FEDAPP_UI_DATA_DIR"] = str(data)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    console.print(
        f"fedapp UI on [bold]{url}[/]; runs in {runs}, data files from {data}. Ctrl-C stops it.",
        highlight=False,
        soft_wrap=True,
    )
    code = _serve(command, env, url if browser else None)
    if code not in _STOPPED_CODES:
        raise fail(f"the UI server exited with code {code}", 1)


def _serve(command: list[str], env: dict[str, str], url: str | None) -> int:
    """Run the server until it ends, passing on the signals that stop this command.

    Parameters
    ----------
    command : list[str]
        The server's command line.
    env : dict[str, str]
        Its environment.
    url : str | None
        Opened in a browser once the server is up; ``None`` opens nothing.

    Returns
    -------
    int
        The server's exit code (negative: the signal that ended it).

    """
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    asked: list[float] = []  # when a stop was asked for

    def forward(signum: int, _frame: object) -> None:
        asked.append(time.monotonic())
        if server.poll() is None:
            server.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in _FORWARDED}
    try:
        if url is not None:
            time.sleep(2.0)  # let the server come up before the browser asks
            if server.poll() is None and not asked:
                webbrowser.open(url)
        while True:
            try:
                return server.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                if asked and time.monotonic() - asked[0] > STOP_GRACE_SECONDS:
                    server.kill()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
