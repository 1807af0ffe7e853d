"""The state badge: every state a run can be in, recorded or inferred, has one."""

from __future__ import annotations

from fedapp.runs import RunState
from fedapp_ui.widgets import STATE_COLORS, STATE_ICONS


def test_every_state_has_a_colour_and_an_icon() -> None:
    # Execute
    states = set(RunState)

    # Assert
    assert set(STATE_COLORS) == states
    assert set(STATE_ICONS) == states
