"""The run lifecycle: which states status.json records, which a reader infers."""

from __future__ import annotations

import signal
import sys
import time

import pytest

from fedapp.runs import STATES, RunState, sigterm_stops, stop_signal


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
    """Restore SIGTERM's handler and the unraisable hook that ``sigterm_stops`` replaces."""
    term, hook = signal.getsignal(signal.SIGTERM), sys.unraisablehook
    yield
    signal.signal(signal.SIGTERM, term)
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
