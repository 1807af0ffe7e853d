"""A run's lifecycle: the states ``status.json`` records and the ones a reader infers."""

from __future__ import annotations

import signal
import threading
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


# Ray's SIGTERM handler (set while `ray.init` runs) exits with the signal's number.
_STOP_SIGNALS = (int(signal.SIGTERM), int(signal.SIGINT))


def stop_signal(err: BaseException) -> str | None:
    """The signal that stopped a run, if ``err`` is (or wraps) a stop; else ``None``.

    A stop arrives as a ``KeyboardInterrupt`` (Ctrl-C, or fedapp's SIGTERM
    handler, whose message names the signal), as the ``SystemExit`` Ray's
    handler raises for a SIGTERM while ``ray.init`` runs, or wrapped in an
    exception of Flower's own. Either way the run is ``stopped``, not ``failed``.
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, KeyboardInterrupt):
            return str(current) or signal.SIGINT.name
        if isinstance(current, SystemExit) and current.code in _STOP_SIGNALS:
            return signal.Signals(current.code).name
        current = current.__cause__ or current.__context__
    return None


def sigterm_stops() -> None:
    """Treat SIGTERM (a UI's Stop, ``kill``) like Ctrl-C from now on: a ``KeyboardInterrupt``.

    The interrupt names the signal, so the run ends ``stopped (SIGTERM)``.
    Only the main thread may set a handler; elsewhere this does nothing.
    """

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)
