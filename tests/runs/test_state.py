"""The run lifecycle: which states status.json records, which a reader infers."""

from __future__ import annotations

import pytest

from fedapp.runs import STATES, RunState


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
