"""``fedapp ui``: serve the Streamlit UI."""

from __future__ import annotations

import os
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
from fedapp.cli.output import console, fail

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


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
        try:
            probe.bind((host, port))
        except OSError as err:
            message = f"cannot serve on {host}:{port}: {err.strerror}; try another --port"
            raise fail(message) from None
    if host not in _LOOPBACK:
        console.print(
            f"[bold yellow]warning:[/] serving on {host}: anyone who can reach it can start "
            "runs and read their results",
            highlight=False,
        )
    script = Path(fedapp_ui.__file__).with_name("app.py")
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", host, "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none", "--global.developmentMode", "false",
        "--client.toolbarMode", "minimal", "--theme.base", "light",
        "--theme.primaryColor", "#2563eb",
    ]  # fmt: skip
    env = {**os.environ, "FEDAPP_UI_RUNS_DIR": str(runs), "FEDAPP_UI_DATA_DIR": str(data)}
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    console.print(
        f"fedapp UI on [bold]{url}[/]; runs in {runs}, data files from {data}. Ctrl-C stops it.",
        highlight=False,
        soft_wrap=True,
    )
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        if browser:
            time.sleep(2.0)  # let the server come up before the browser asks
            if server.poll() is None:
                webbrowser.open(url)
        code = server.wait()
    except KeyboardInterrupt:  # the server got the same Ctrl-C: let it finish
        code = server.wait()
    if code not in (0, -2, 130):
        raise fail(f"the UI server exited with code {code}", 1)
