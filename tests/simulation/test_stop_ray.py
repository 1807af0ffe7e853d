"""Ending a run's Ray node is bounded: a shutdown that never returns cannot hold a stop."""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest

from fedapp import simulation


def test_a_ray_shutdown_that_hangs_does_not_hold_the_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: a Ray whose shutdown waits for a node that never answers
    never = threading.Event()
    hanging = types.SimpleNamespace(shutdown=lambda: never.wait())
    monkeypatch.setitem(sys.modules, "ray", hanging)
    monkeypatch.setattr(simulation, "_RAY_SHUTDOWN_TIMEOUT", 0.2)
    monkeypatch.setattr(simulation, "_RAY_GRACE", 0.1)

    # Execute
    started = time.monotonic()
    simulation._stop_ray()

    # Assert
    assert time.monotonic() - started < 5
    never.set()
