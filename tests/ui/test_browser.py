"""The web UI in a real browser: `fedapp ui`, Debian's Chromium, a 2-round run (slow).

Starts the real `fedapp ui` command, fills the New run page, starts a run and
watches it finish on the Run page. Screenshots of both pages are saved in the
test's temporary folder and their paths printed (`pytest -s` shows them).
"""

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
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]
START_TIMEOUT = 60.0  # seconds for `fedapp ui` to answer its health check
RUN_TIMEOUT = 180.0  # seconds for the 2-round run to finish once started

# Texts the Run page shows only while a run is on its way (launch, round 0,
# rounds, baselines); the finished page shows "Finished after round 2 of 2".
LIVE_TEXT = re.compile(
    r"starting the run|Starting Flower|Getting ready for round|Round \d+ of \d+"
    r"|rounds done|Training the centralized"
)
DONE_TEXT = "Finished after round 2 of 2"
FAILED_TEXT = re.compile(r"(Failed|Stopped|Interrupted) after round|could not start|No run called")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _group(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (zombies count as gone)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, group = stat.read_text().rpartition(")")[2].split()[:3]
        except (OSError, ValueError):
            continue  # ended while we looked
        if state != "Z" and int(group) == pgid:
            members.append(int(stat.parent.name))
    return members


def _stop_group(pgid: int, grace: float = 10.0) -> None:
    """SIGTERM process group ``pgid``, then SIGKILL whatever is left of it after ``grace``."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _group(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _stop_launched_runs(runs: Path) -> None:
    """Stop the simulations the UI launched (each in its own session) if still alive."""
    for record in (runs / ".fedapp-ui" / "launches").glob("*.json"):
        try:
            pid = int(json.loads(record.read_text("utf-8"))["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # the settings file beside each record, or a half-written record
        if _group(pid):  # it leads its own group (start_new_session), like its Ray processes
            _stop_group(pid)


def _output(log: Path) -> str:
    return log.read_text("utf-8", errors="replace")[-5000:]


@pytest.fixture
def ui_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`fedapp ui` on a free loopback port; yields its URL and runs folder."""
    runs = tmp_path / "runs"
    port = _free_port()
    log = tmp_path / "ui.log"
    # The console script `pip install` put beside this Python, as a user types it.
    script = Path(sys.executable).with_name("fedapp")
    fedapp = [str(script)] if script.exists() else [sys.executable, "-m", "fedapp"]
    command = [
        *fedapp, "ui", "--no-browser",
        "--host", "127.0.0.1", "--port", str(port), "--runs-dir", str(runs),
    ]  # fmt: skip
    with log.open("wb") as out:
        # Its own process group: `fedapp ui` and the Streamlit server it starts stop as one.
        server = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                pytest.fail(f"`fedapp ui` exited with code {server.returncode}:\n{_output(log)}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                silent = f"`fedapp ui` did not answer within {START_TIMEOUT:g} s"
                pytest.fail(f"{silent}:\n{_output(log)}")
            time.sleep(0.5)
        yield url, runs
    finally:
        try:
            _stop_group(server.pid)
            server.wait(timeout=10)
        finally:
            _stop_launched_runs(runs)


@pytest.fixture
def page() -> Iterator:
    """A page of Debian's Chromium, driven by Playwright (no browser downloads)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test needs Debian's Chromium "
            "(`apt-get install chromium`)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.set_default_timeout(60_000)
            yield tab
        finally:
            browser.close()


def _body_text(page) -> str:
    try:
        return page.evaluate("document.body.innerText")
    except Exception:  # the page is between two renders; ask again
        return ""


def _screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main pane, so grow the window to fit it."""
    size = page.viewport_size
    height = page.evaluate(
        "Math.max(document.documentElement.scrollHeight,"
        " ...Array.from(document.querySelectorAll('[data-testid=stMain]'), e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": size["width"], "height": max(height, size["height"])})
    page.wait_for_timeout(500)  # charts follow the new size
    page.screenshot(path=path, full_page=True)
    page.set_viewport_size(size)


def test_new_run_to_finished_run_in_a_browser(ui_server, page, tmp_path: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    url, runs = ui_server
    page.goto(url)
    for label, value in [("Rows", "2000"), ("Institutions (clients)", "2"), ("Rounds", "2")]:
        box = page.get_by_label(label, exact=True)
        box.fill(value)
        box.press("Enter")
        page.wait_for_timeout(500)  # Streamlit reruns the script with the new value
        expect(box).to_have_value(value)
    new_run_png = tmp_path / "new_run.png"
    _screenshot(page, new_run_png)
    print(f"\nNew run page: {new_run_png}")

    started = time.monotonic()
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url(re.compile(r"/run\?run="), timeout=60_000)
    run_id = re.search(r"[?&]run=([^&#]+)", page.url).group(1)

    # Watch the page until the run is done, noting whether it ever showed progress.
    saw_progress = False
    while True:
        text = _body_text(page)
        saw_progress = saw_progress or bool(LIVE_TEXT.search(text))
        if DONE_TEXT in text:
            break
        failed = FAILED_TEXT.search(text)
        launch_log = runs / ".fedapp-ui" / "launches" / f"{run_id}.log"
        if failed or time.monotonic() - started > RUN_TIMEOUT:
            log = _output(launch_log) if launch_log.exists() else "(no log)"
            reason = failed.group(0) if failed else f"not finished after {RUN_TIMEOUT:g} s"
            pytest.fail(f"run {run_id}: {reason}\npage:\n{text}\nrun's output:\n{log}")
        page.wait_for_timeout(500)
    print(f"run {run_id} finished in the browser after {time.monotonic() - started:.0f} s")
    assert saw_progress, "the Run page never showed the run's progress before it finished"
    # The finished run as opened afresh: the page that watched it can keep the
    # charts of its last live redraw beside the new ones for a while.
    page.reload()
    page.wait_for_function(f"document.body.innerText.includes({DONE_TEXT!r})", timeout=60_000)

    # The charts, as Plotly holds them in the page: rounds 0-2 on the global test
    # set, rounds 1-2 on the clients' data, and one line per client. The page
    # redraws itself when the run finishes, and until that redraw ends the charts
    # of the previous one may still be there: wait for exactly the expected two.
    read_charts = (
        "Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".map(e => (e.data || []).map(t => [t.name, Array.from(t.x || [])]))"
    )
    expected = {
        "global test set": [0, 1, 2],
        "clients' held-out data (weighted)": [1, 2],
    }
    # The global model, each client's AUC, and each client's update norm; then,
    # once the run has written them, the final model's ROC, PR and confusion.
    curves = (runs / run_id / "curves.json").exists()
    count = 6 if curves else 3
    # Wait for exactly that many: a chart of the previous redraw may linger a moment.
    with contextlib.suppress(PlaywrightTimeout):  # the asserts below say what is wrong
        page.wait_for_function(
            f"""([expected, count]) => {{
                const c = {read_charts};
                const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
                const first = Object.fromEntries(c.length ? c[0] : []);
                return c.length === count
                    && Object.entries(expected).every(([n, x]) => same(first[n], x))
                    && c[1].length === 2 && c[1].every(([, x]) => same(x, [1, 2]));
            }}""",
            arg=[expected, count],
            timeout=60_000,
        )
    charts = page.evaluate(read_charts)
    assert len(charts) == count, [[name for name, _ in chart] for chart in charts]
    global_chart = dict(charts[0])
    for name, rounds in expected.items():
        assert global_chart.get(name) == rounds, charts[0]
    assert len(charts[1]) == 2, charts[1]
    assert all(x == [1, 2] for _, x in charts[1]), charts[1]
    norms = {name: x for name, x in charts[2] if name != "flagged"}
    assert norms == {"inst-0": [1, 2], "inst-1": [1, 2]}, charts[2]

    run_dir = runs / run_id
    assert json.loads((run_dir / "status.json").read_text("utf-8"))["state"] == "finished"
    assert (run_dir / "summary.json").is_file()

    run_png = tmp_path / "run.png"
    _screenshot(page, run_png)
    print(f"Run page: {run_png}")


# The rounds of the hand-made runs (tests/run_files.py's config.json).
CONFIG_ROUNDS = 2


def _finished_run(runs: Path, name: str, strategy: str, params: dict, auc: float) -> None:
    """A finished two-round run written by hand, with a strategy label as long as weighted's."""
    from run_files import SUMMARY, make_run

    from fedapp.runs import Event, Scope, Stage

    summary = {**SUMMARY, "federated": {**SUMMARY["federated"], "auc": auc}}
    run = make_run(
        runs, name, config={"strategy": strategy, "strategy-params": params}, summary=summary
    )
    for r in (1, 2):
        run.append_metrics(
            Event(r, Stage.EVALUATE, Scope.CENTRALIZED, {"auc": auc - 0.1 / r}).to_dict()
        )


def test_compares_tables_fit_a_1400_pixel_window(ui_server, page) -> None:
    url, runs = ui_server
    weighted = {"server-learning-rate": 1.0, "policy": "examples", "client-weights": ""}
    for name, strategy, params, auc in [
        ("20251202-011500-fedavg-3f2a", "fedavg", {}, 0.8),
        ("20251202-011600-weighted-9c1d", "weighted", weighted, 0.8),
        ("20251202-011700-fedprox-77aa", "fedprox", {"proximal-mu": 0.1}, 0.82),
    ]:
        _finished_run(runs, name, strategy, params, auc)
        time.sleep(0.05)  # newest last

    page.goto(f"{url}/compare")
    page.wait_for_selector("[data-testid=stDataFrame] .dvn-scroller")
    page.wait_for_timeout(1000)  # the grids size their columns once drawn
    widths = page.evaluate(
        """() => Array.from(document.querySelectorAll('[data-testid=stDataFrame] .dvn-scroller'))
            .map(s => [s.scrollWidth, s.clientWidth])"""
    )

    # Every table shows all its columns: none scrolls sideways
    assert len(widths) >= 3, widths
    assert all(scroll <= client + 1 for scroll, client in widths), widths


def test_the_new_run_form_says_what_is_wrong_and_keeps_what_is_right(ui_server, page) -> None:
    from playwright.sync_api import expect

    url, runs = ui_server
    _finished_run(runs, "20251202-011500-fedprox-3f2a", "fedprox", {"proximal-mu": 0.4}, 0.8)
    rows = [f"{i},{['north', 'south'][i % 2]},{20 + i % 40},{int(i % 4 == 0)}" for i in range(200)]
    (runs / "table.csv").write_text("id,region,age,churned\n" + "\n".join(rows), encoding="utf-8")
    page.goto(url)
    rounds = page.get_by_role("spinbutton", name="Rounds", exact=True)
    batch = page.get_by_role("spinbutton", name="Batch size", exact=True)
    start = page.get_by_role("button", name="Start run")

    # A file instead of the demo: the form grows above the training fields
    page.get_by_text("File on the server").click()
    path = page.get_by_role("textbox", name="Path")
    path.fill("table.csv")
    path.press("Enter")
    expect(page.get_by_text("200 rows in 2 institutions")).to_be_visible()
    expect(rounds).to_have_value("10")

    # A value out of range reaches the page: it is said, and Start waits
    rounds.fill("0")
    rounds.press("Enter")
    expect(page.get_by_text("rounds must be > 0 or auto, got 0").first).to_be_visible()
    expect(start).to_be_disabled()
    batch.fill("16")  # another redraw: no field loses its value meanwhile
    batch.press("Enter")
    page.wait_for_timeout(1000)
    expect(rounds).to_have_value("0")
    untouched = {"Local epochs": "1", "Evaluate every": "1", "Seed": "42"}
    for label, value in untouched.items():
        expect(page.get_by_role("spinbutton", name=label, exact=True)).to_have_value(value)
    rounds.fill("3")
    rounds.press("Enter")
    expect(start).to_be_enabled()
    expect(batch).to_have_value("16")

    # Run again: the form holds the run's settings, and keeps them while edited
    page.goto(f"{url}/run?run=20251202-011500-fedprox-3f2a")
    page.get_by_role("button", name="Run again").click()
    expect(page.get_by_text("The settings of run")).to_be_visible()
    expect(rounds).to_have_value(str(CONFIG_ROUNDS))
    expect(page.get_by_role("spinbutton", name="Proximal mu")).to_have_value("0.4")
    batch.fill("8")
    batch.press("Enter")
    page.wait_for_timeout(1000)
    expect(rounds).to_have_value(str(CONFIG_ROUNDS))
    expect(batch).to_have_value("8")


def test_a_regression_runs_page_draws_predicted_against_actual(ui_server, page) -> None:
    from run_files import make_task_run

    url, runs = ui_server
    make_task_run(runs, "20251202-011500-fedavg-spend", "regression")

    page.goto(f"{url}/run?run=20251202-011500-fedavg-spend")

    # Its main score's tile, and its charts: RMSE per round and per client, then
    # the final model's predictions against the actual values, and the residuals
    page.get_by_text("Global test RMSE").wait_for()
    read_charts = (
        "Array.from(document.querySelectorAll('.js-plotly-plot'))"
        ".map(e => (e.layout && e.layout.title && e.layout.title.text) || '')"
    )
    page.wait_for_function(f"() => {read_charts}.length === 4", timeout=30_000)
    assert page.evaluate(read_charts) == [
        "RMSE per round", "RMSE per client", "Predicted against actual",
        "Residuals (predicted - actual)",
    ]  # fmt: skip
