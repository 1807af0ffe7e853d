"""A run's lifecycle: the states ``status.json`` records and the ones a reader infers."""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Any


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


class StopRequest(Exception):
    """Raised by a run's own event listener to end the run now, as stopped (not failed).

    An ``Exception``, not a ``KeyboardInterrupt``: it travels from the
    server's thread, where listeners are called, to the driver, which marks
    the run ``stopped (<message>)`` (a tuner pruning a trial says why).
    """


# Ray's SIGTERM handler (set while `ray.init` runs) exits with the signal's number.
_STOP_SIGNALS = (int(signal.SIGTERM), int(signal.SIGINT))


def stop_signal(err: BaseException) -> str | None:
    """The signal that stopped a run, if ``err`` is (or wraps) a stop; else ``None``.

    A stop arrives as a ``KeyboardInterrupt`` (Ctrl-C, or fedapp's SIGTERM
    handler, whose message names the signal), as the ``SystemExit`` Ray's
    handler raises for a SIGTERM while ``ray.init`` runs, as a listener's
    :class:`StopRequest` (its message), or wrapped in an exception of
    Flower's own. Either way the run is ``stopped``, not ``failed``.
    """
    for current in _chain(err):
        if isinstance(current, KeyboardInterrupt):
            return str(current) or signal.SIGINT.name
        if isinstance(current, StopRequest):
            return str(current)
        if isinstance(current, SystemExit) and current.code in _STOP_SIGNALS:
            return signal.Signals(current.code).name
    return None


def requested_stop(err: BaseException) -> StopRequest | None:
    """The listener's :class:`StopRequest` that ``err`` is or wraps, if any."""
    return next((e for e in _chain(err) if isinstance(e, StopRequest)), None)


def _chain(err: BaseException) -> Iterator[BaseException]:
    """``err`` and what it was raised from or during, innermost last (each once)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def sigterm_stops() -> None:
    """Treat SIGTERM (a UI's Stop, ``kill``) like Ctrl-C from now on: a ``KeyboardInterrupt``.

    The interrupt names the signal, so the run ends ``stopped (SIGTERM)``.
    Two places must not get it. Python drops an exception raised where it can
    only report it (a finaliser; Cython's start-up patch of
    ``collections.abc`` while a module imports): the stop would be lost and
    the run go on to its last round, so a stop Python swallows is raised again
    in the main thread. And the hooks Python runs around a ``fork`` (Ray
    spawns its processes that way): there an interrupt is swallowed *and*
    leaves ``logging``'s module lock held, so the next thread to log waits
    for ever. A stop that arrives while a fork is under way waits until the
    fork is done. Only the main thread may set a handler; elsewhere this does
    nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGTERM, _stop_now)
    if not isinstance(sys.unraisablehook, _RaiseStopsAgain):
        sys.unraisablehook = _RaiseStopsAgain(sys.unraisablehook)
    _ForkGuard.install()


def _stop_now(signum: int, _frame: object) -> None:
    if _ForkGuard.forking:
        _ForkGuard.deferred = signum
        return
    raise KeyboardInterrupt(signal.Signals(signum).name)


class _ForkGuard:
    """Whether a fork is under way, and the stop that waits for its end.

    Python runs the ``before`` hooks in reverse order of registration and the
    ``after`` ones in order, so hooks registered after ``logging``'s (it
    registers on import) bracket its lock.
    """

    forking = False
    deferred: int | None = None
    _installed = False

    @classmethod
    def install(cls) -> None:
        if not cls._installed:
            os.register_at_fork(
                before=cls._before, after_in_parent=cls._after, after_in_child=cls._in_child
            )
            cls._installed = True

    @classmethod
    def _before(cls) -> None:
        cls.forking = True

    @classmethod
    def _in_child(cls) -> None:
        # A child that goes on in Python must get its own stops; the parent's is not its.
        cls.forking, cls.deferred = False, None

    @classmethod
    def _after(cls) -> None:
        cls.forking = False
        signum, cls.deferred = cls.deferred, None
        if signum is not None:
            _deliver_again(signum)


def _deliver_again(signum: int) -> None:
    """Run ``signum``'s handler in the main thread a moment from now.

    From another thread, a moment later: raised where the stop was swallowed
    (or in a fork hook), it would be swallowed again.
    """
    again = threading.Timer(_REDELIVER_AFTER, _thread.interrupt_main, (signum,))
    again.daemon = True
    again.start()


class _RaiseStopsAgain:
    """An unraisable hook that delivers a swallowed stop again, and passes the rest on."""

    def __init__(self, previous: Callable[[Any], object]) -> None:
        self.previous = previous

    def __call__(self, unraisable: Any) -> None:
        stop = unraisable.exc_value
        if not isinstance(stop, KeyboardInterrupt):
            self.previous(unraisable)
            return
        # The signal's own handler runs again, as if it had arrived just now
        # (the default one for SIGINT raises the interrupt). If the main
        # thread is still where it was, the stop lands here again and retries.
        name = str(stop)
        known = name in signal.Signals.__members__
        _deliver_again(signal.Signals[name] if known else signal.SIGINT)


# Seconds after a swallowed stop before it is delivered again.
_REDELIVER_AFTER = 0.01
