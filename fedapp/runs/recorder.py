"""The one writer of a run's records while it runs: events, status and summary.

Whatever drives the run (the simulation driver, the Flower App's ServerApp)
reports through a :class:`Recorder`; it is the only code that appends to
``metrics.jsonl`` and moves ``status.json`` between states.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from fedapp.runs.card import model_card
from fedapp.runs.directory import RunDir, write_text_atomic
from fedapp.runs.events import Event, Phase, Scope, Stage
from fedapp.runs.state import RunState

EventListener = Callable[[Event], None]
PhaseListener = Callable[[Phase], None]


class Recorder:
    """Record one run into its directory.

    Parameters
    ----------
    run_dir : RunDir
        The run's directory (already created, its config written).
    rounds : int
        The rounds the run was asked for (``status.json``'s ``rounds``).
    on_event : EventListener | None
        Called with every event after it is written (a progress display).
    on_phase : PhaseListener | None
        Called with every step outside the rounds (start-up, baselines).
    elapsed : float
        Seconds the run had taken before this recorder (a resumed run's, at
        its checkpoint): its events' times go on from there.
    round_ : int
        The last round done before this recorder (a resumed run's checkpoint's).

    """

    def __init__(
        self,
        run_dir: RunDir,
        rounds: int,
        on_event: EventListener | None = None,
        on_phase: PhaseListener | None = None,
        elapsed: float = 0.0,
        round_: int = 0,
    ) -> None:
        self.run_dir = run_dir
        self.rounds = rounds
        self.on_event = on_event
        self.on_phase = on_phase
        self.round = round_
        self._started = time.monotonic() - elapsed

    @property
    def elapsed(self) -> float:
        """Seconds since the recorder was made (the run's start)."""
        return round(time.monotonic() - self._started, 3)

    def event(
        self,
        server_round: int,
        stage: Stage,
        scope: Scope,
        metrics: Mapping[str, Any],
        clients: Mapping[str, Mapping[str, Any]] | None = None,
        **extra: Any,
    ) -> Event:
        """Append one event to ``metrics.jsonl`` and tell the listener."""
        event = Event(
            server_round, stage, scope, dict(metrics), dict(clients or {}), self.elapsed, extra
        )
        self.run_dir.append_metrics(event.to_dict())
        if self.on_event is not None:
            self.on_event(event)
        return event

    def phase(self, name: str, label: str, done: int = 0, total: int = 0) -> None:
        """Say what the run does outside its rounds; the next round's progress clears it."""
        phase = Phase(name, label, done, total)
        self.run_dir.set_status(RunState.RUNNING, self.round, self.rounds, phase=phase.to_dict())
        if self.on_phase is not None:
            self.on_phase(phase)

    def progress(self, server_round: int) -> None:
        """Mark round ``server_round`` done: the run is ``running`` there."""
        self.round = server_round
        self.run_dir.set_status(RunState.RUNNING, server_round, self.rounds)

    def finish(self, summary: Mapping[str, Any], last_round: int, reason: str | None) -> None:
        """Write ``summary.json``, then mark the run ``finished`` (in that order).

        A reader that sees ``finished`` can rely on the summary being there,
        and on the model card (``model_card.md``) unless it could not be written.
        """
        self.run_dir.write_summary(dict(summary))
        self._write_card(summary)
        extra = {"reason": reason} if reason else {}
        self.run_dir.set_status(RunState.FINISHED, last_round, self.rounds, **extra)

    def _write_card(self, summary: Mapping[str, Any]) -> None:
        """Write ``model_card.md`` from the run's records; a failure is said, never fatal."""
        run = self.run_dir
        try:
            prep = run.preprocessing_file
            preprocessing = json.loads(prep.read_text("utf-8")) if prep.exists() else None
            card = model_card(run.read_config(), summary, preprocessing)
            write_text_atomic(run.model_card_file, card)
        except Exception as err:  # the card describes the run: it must not keep it from finishing
            sys.stderr.write(f"fedapp: could not write {run.model_card_file.name}: {err}\n")

    def end(self, state: RunState, reason: str, summary: Mapping[str, Any] | None = None) -> None:
        """Mark the run ``failed`` or ``stopped`` at the last round it reached, saying why.

        A stopped run that kept the model of a completed round has its
        ``summary`` written first, as :meth:`finish` does.
        """
        if state not in (RunState.FAILED, RunState.STOPPED):
            raise ValueError(f"a run ends failed or stopped this way, not {state}")
        if summary is not None:
            try:
                self.run_dir.write_summary(dict(summary))
            except OSError as err:
                sys.stderr.write(f"fedapp: could not write the stopped run's summary: {err}\n")
        try:
            current = int(self.run_dir.read_status().get("round", self.round))
        except (OSError, ValueError):
            current = self.round
        try:
            self.run_dir.set_status(state, current, self.rounds, error=reason)
        except OSError as err:
            # The caller is ending the run for a reason of its own, which must
            # not be masked; the reason at least reaches the person watching.
            sys.stderr.write(
                f"fedapp: could not record run {self.run_dir.run_id} as {state} "
                f"({err.strerror or err}); it ended so: {reason}\n"
            )
