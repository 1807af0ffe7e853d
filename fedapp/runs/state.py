"""A run's lifecycle: the states ``status.json`` records and the ones a reader infers."""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    """Where a run is.

    ``status.json`` records the first four; a reader adds the others from what
    it sees: ``starting`` (the directory has no status yet: the data is being
    checked), ``interrupted`` (``running`` but its process is gone) and
    ``missing`` (no run directory where one was launched).
    """

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    STARTING = "starting"
    INTERRUPTED = "interrupted"
    MISSING = "missing"

    @property
    def recorded(self) -> bool:
        """Whether ``status.json`` may hold this state (the others are inferred)."""
        return self in _RECORDED

    @property
    def active(self) -> bool:
        """Whether the run may still change (a reader keeps polling it)."""
        return self in (RunState.RUNNING, RunState.STARTING)

    @property
    def ended(self) -> bool:
        """Whether the run is over, for good or ill."""
        return not self.active and self is not RunState.MISSING


_RECORDED = frozenset({RunState.RUNNING, RunState.FINISHED, RunState.FAILED, RunState.STOPPED})
