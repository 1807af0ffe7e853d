"""The run lifecycle: which states status.json records, which a reader infers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from fedapp.runs import STATES, RunState, sigterm_stops, stop_signal
from fedapp.runs.state import _ForkGuard


def test_status_json_records_four_states() -> None:
    # Execute
    recorded = [s for s in RunState if s.recorded]

    # Assert
    assert recorded == [RunState.RUNNING, RunState.FINISHED, RunState.FAILED, RunState.STOPPED]
    assert STATES == ("running", "finished", "failed", "stopped")


@pytest.mark.parametrize(
    ("state", "active", "ended"),
    [
        (RunState.RUNNING, True, False),
        (RunState.STARTING, True, False),
        (RunState.FINISHED, False, True),
        (RunState.FAILED, False, True),
        (RunState.STOPPED, False, True),
        (RunState.INTERRUPTED, False, True),
        (RunState.MISSING, False, False),
    ],
)
def test_active_and_ended(state: RunState, active: bool, ended: bool) -> None:
    # Execute / Assert
    assert (state.active, state.ended) == (active, ended)


def test_a_state_is_its_json_string() -> None:
    # Execute
    state = RunState("interrupted")

    # Assert
    assert state is RunState.INTERRUPTED
    assert f"{state}" == "interrupted" and state == "interrupted"


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (KeyboardInterrupt(), "SIGINT"),  # Ctrl-C: once recorded as "stopped ()"
        (KeyboardInterrupt("SIGTERM"), "SIGTERM"),
        (SystemExit(15), "SIGTERM"),  # Ray's handler while ray.init runs
        (SystemExit(1), None),
        (ValueError("bad"), None),
    ],
)
def test_stop_signal_names_the_stop(err: BaseException, expected: str | None) -> None:
    # Execute / Assert
    assert stop_signal(err) == expected


def test_stop_signal_sees_a_stop_that_flower_wrapped() -> None:
    # Prepare
    try:
        try:
            raise KeyboardInterrupt("SIGTERM")
        except KeyboardInterrupt as stop:
            raise RuntimeError("ServerApp thread raised an exception") from stop
    except RuntimeError as wrapped:
        err = wrapped

    # Execute / Assert
    assert stop_signal(err) == "SIGTERM"


@pytest.fixture
def stop_handlers():
    """Restore SIGTERM's handler and the unraisable hook that ``sigterm_stops`` replaces.

    SIGINT gets Python's own handler meanwhile: a process started in the
    background of a shell inherits SIGINT ignored.
    """
    term, interrupt, hook = (
        signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT), sys.unraisablehook
    )  # fmt: skip
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGINT, interrupt)
    sys.unraisablehook = hook


class _Swallower:
    """Raises a stop where Python can only report it: a finaliser (as Cython's import patch)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __del__(self) -> None:
        raise KeyboardInterrupt(self.name)


def _let_signals_run() -> None:
    for _ in range(200):
        time.sleep(0.005)


@pytest.mark.usefixtures("stop_handlers")
@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT"])
def test_a_stop_that_python_swallowed_is_raised_again(name: str) -> None:
    # Prepare
    sigterm_stops()

    # Execute / Assert: dropped at once, its finaliser's interrupt is "ignored"
    with pytest.raises(KeyboardInterrupt) as stop:
        _Swallower(name)
        _let_signals_run()
    assert stop_signal(stop.value) == name


@pytest.mark.usefixtures("stop_handlers")
def test_other_swallowed_errors_still_reach_the_previous_hook() -> None:
    # Prepare
    seen: list[type[BaseException]] = []
    sys.unraisablehook = lambda unraisable: seen.append(unraisable.exc_type)
    sigterm_stops()

    class Failing:
        def __del__(self) -> None:
            raise ValueError("not a stop")

    # Execute
    Failing()
    _let_signals_run()

    # Assert
    assert seen == [ValueError]


@pytest.mark.usefixtures("stop_handlers")
def test_a_sigterm_during_a_fork_waits_for_the_fork_to_end() -> None:
    # Prepare: the main thread is where Python runs its fork hooks (logging's lock is held)
    sigterm_stops()
    _ForkGuard._before()

    # Execute / Assert: nothing is raised inside the fork ...
    try:
        signal.raise_signal(signal.SIGTERM)
        _let_signals_run()
    finally:
        _ForkGuard._after()
    # ... and the stop comes once it is done
    with pytest.raises(KeyboardInterrupt) as stop:
        _let_signals_run()
    assert stop_signal(stop.value) == "SIGTERM"


_FORK_SCRIPT = """
import os, signal, time
from fedapp.runs import sigterm_stops

inside = []

def hook():  # registered before the guard's: runs inside its bracket, as logging's does
    signal.raise_signal(signal.SIGTERM)
    try:
        sum(range(100_000))  # the handler runs at the next bytecodes
        inside.append("nothing")
    except KeyboardInterrupt:
        inside.append("interrupt")

os.register_at_fork(after_in_parent=hook)
sigterm_stops()
try:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    time.sleep(2)
    print("no stop", inside)
except KeyboardInterrupt as stop:
    print("stopped", stop, inside)
"""


def test_a_sigterm_in_a_real_fork_hook_is_raised_after_the_fork() -> None:
    # Execute
    done = subprocess.run(
        [sys.executable, "-c", _FORK_SCRIPT], capture_output=True, text=True, timeout=60
    )

    # Assert
    assert done.stdout.strip() == "stopped SIGTERM ['nothing']", done.stderr


@pytest.mark.usefixtures("stop_handlers")
def test_a_forked_child_gets_its_own_stops() -> None:
    # Prepare
    sigterm_stops()

    # Execute: the child stops itself; a child left "forking" would defer it for ever
    pid = os.fork()
    if pid == 0:
        try:
            signal.raise_signal(signal.SIGTERM)
            _let_signals_run()
        except KeyboardInterrupt:
            os._exit(130)
        os._exit(1)
    _, status = os.waitpid(pid, 0)

    # Assert
    assert os.waitstatus_to_exitcode(status) == 130
