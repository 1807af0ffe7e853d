"""The end of a run, in one place: its outcome, ``summary.json`` and the state ``finished``.

Whatever drove the rounds (the simulation driver, the Flower App's
ServerApp) reads the run strategy's :class:`RunOutcome` once Flower's loop
has returned and calls :func:`finish_run`; the simulation driver first adds
the centralized and local-only baselines.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fedapp.data import Preprocessor
from fedapp.runs import Recorder, RunState, stop_signal


@dataclass(frozen=True)
class RunOutcome:
    """What a run's rounds produced.

    Attributes
    ----------
    strategy : str
        The strategy plugin's name.
    rounds : int
        The run's last round: fewer than asked when a privacy budget ended it,
        or an automatic run converged.
    rounds_run : int
        The last round whose global model was evaluated.
    stop_reason : str | None
        Why the run ended before the rounds asked for, if it did.
    federated : Mapping[str, float] | None
        The last round's central evaluation (``None`` without a server-held test set).
    federated_evaluation : Mapping[str, float] | None
        The last round's example-weighted mean of the clients' own evaluations.
    privacy : Mapping[str, Any] | None
        The privacy ledger's summary of a DP run.
    preprocessing : str
        The federated preprocessing, as JSON (the baselines reuse it).
    failed_client_rounds : int
        How many times a client asked for a result in a round gave none.
    skipped_rounds : tuple[int, ...]
        The rounds with fewer training results than ``min-fit-results``: each
        kept the previous global model.
    clients : Mapping[str, Mapping[str, int]] | None
        Each client's ``train`` rows (from its statistics) and ``test`` rows
        (from its evaluations), where known, by partition id.
    threshold : Mapping[str, Any] | None
        The run's decision threshold, calibrated or fixed, and its scores on
        the clients' held-out rows pooled (:mod:`fedapp.flower.closing`).
    personalized : Mapping[str, Any] | None
        Each client's kept model and fine-tuned model scored on its held-out rows.
    model_round : int | None
        The round whose global model is kept and scored, when not the last
        (an automatic run's best round).
    auto_rounds : Mapping[str, Any] | None
        An automatic run's monitor: the score watched, its best value and round.

    """

    strategy: str
    rounds: int
    rounds_run: int
    stop_reason: str | None = None
    federated: Mapping[str, float] | None = None
    federated_evaluation: Mapping[str, float] | None = None
    privacy: Mapping[str, Any] | None = None
    preprocessing: str = ""
    failed_client_rounds: int = 0
    skipped_rounds: tuple[int, ...] = ()
    clients: Mapping[str, Mapping[str, int]] | None = None
    threshold: Mapping[str, Any] | None = None
    personalized: Mapping[str, Any] | None = None
    model_round: int | None = None
    auto_rounds: Mapping[str, Any] | None = None

    @property
    def complete(self) -> bool:
        """Whether the run got to its last round's results."""
        return self.rounds_run >= self.rounds

    @property
    def kept_round(self) -> int:
        """The round of the global model kept (``model.keras``) and of the scores."""
        return self.model_round or self.rounds


def summary(
    outcome: RunOutcome, wall_seconds: float, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``summary.json`` of ``outcome``, with ``extra`` (e.g. the baselines) after its own keys."""
    out: dict[str, Any] = {
        "federated": outcome.federated,
        "federated_evaluation": outcome.federated_evaluation,
        "wall_seconds": wall_seconds,
        "rounds": outcome.rounds,
        "strategy": outcome.strategy,
        "failed_client_rounds": outcome.failed_client_rounds,
    }
    if outcome.skipped_rounds:
        out["skipped_rounds"] = list(outcome.skipped_rounds)
    if outcome.preprocessing:
        # What the scores are of: a reader needs no other file to label them.
        prep = Preprocessor.from_json(outcome.preprocessing)
        out |= {"target": prep.target, "task": str(prep.task),
                "classes": list(prep.encoding.classes)}  # fmt: skip
    if outcome.clients:
        out["clients"] = {pid: dict(rows) for pid, rows in outcome.clients.items()}
    if outcome.stop_reason:
        out["reason"] = outcome.stop_reason
    if outcome.privacy is not None:
        out["privacy"] = dict(outcome.privacy)
    if outcome.threshold is not None:
        out["threshold"] = dict(outcome.threshold)
    if outcome.personalized is not None:
        out["personalized"] = dict(outcome.personalized)
    if outcome.auto_rounds is not None:
        out["auto_rounds"] = dict(outcome.auto_rounds)
    return out | dict(extra or {})


def client_rows(
    train: Mapping[int, int], evaluated: Mapping[int, int], evaluated_on: str = "test"
) -> dict[str, dict[str, int]]:
    """Each client's known ``train`` and evaluated rows, by partition id (as text, in order).

    ``evaluated_on`` names the rows the clients' evaluations count: ``test``,
    or ``validation`` in a run that holds validation rows out (its clients
    score the rounds on those, never on their test rows).
    """
    pids = sorted({*train, *evaluated})
    kinds = (("train", train), (evaluated_on, evaluated))
    return {str(pid): {k: rows[pid] for k, rows in kinds if pid in rows} for pid in pids}


def finish_run(
    recorder: Recorder, outcome: RunOutcome, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Write the run's summary and mark it ``finished`` at its last round.

    Parameters
    ----------
    recorder : Recorder
        The run's recorder; the summary's ``wall_seconds`` is its elapsed time.
    outcome : RunOutcome
        What the rounds produced.
    extra : Mapping[str, Any] | None
        More summary entries (the simulation's baselines and gap).

    Returns
    -------
    dict[str, Any]
        The summary written.

    Raises
    ------
    RuntimeError
        When the run did not get to its last round: it is not finished.

    """
    if not outcome.complete:
        raise RuntimeError(
            f"the run ended before its last round (round {outcome.rounds_run} of {outcome.rounds})"
        )
    written = summary(outcome, recorder.elapsed, extra)
    recorder.finish(written, outcome.rounds, outcome.stop_reason)
    return written


def stop_run(recorder: Recorder, kept: RunOutcome | None, reason: str) -> None:
    """Mark the run ``stopped``; with a kept model, write its summary first.

    Parameters
    ----------
    recorder : Recorder
        The run's recorder.
    kept : RunOutcome | None
        What the completed rounds produced, the global model of the last one
        saved (:meth:`~fedapp.flower.strategy.RunStrategy.keep_stopped`); ``None``
        when no round completed.
    reason : str
        Why it stopped (``stopped (SIGTERM)``).

    """
    if kept is None:
        recorder.end(RunState.STOPPED, reason)
        return
    written = summary(kept, recorder.elapsed) | {"partial": True, "round": kept.rounds_run}
    recorder.end(RunState.STOPPED, reason, summary=written)


def end_unfinished(
    recorder: Recorder, err: BaseException, keep: Callable[[], RunOutcome | None]
) -> str | None:
    """End a run that ``err`` interrupted: ``stopped`` for a stop, else ``failed``.

    Parameters
    ----------
    recorder : Recorder
        The run's recorder.
    err : BaseException
        What ended it.
    keep : Callable[[], RunOutcome | None]
        Keeps a stopped run's last completed round's model and says what it
        scores (:meth:`~fedapp.flower.strategy.RunStrategy.keep_stopped`).

    Returns
    -------
    str | None
        The signal that stopped the run, or ``None`` when it failed.

    """
    stop = stop_signal(err)
    if stop is None:
        recorder.end(RunState.FAILED, failure_reason(err))
        return None
    try:
        kept = keep()
    except Exception:  # keeping the model must never keep the run from being marked stopped
        logging.getLogger(__name__).warning("could not keep the stopped run's model", exc_info=True)
        kept = None
    stop_run(recorder, kept, f"stopped ({stop})")
    return stop


def failure_reason(err: BaseException) -> str:
    """The innermost message: Flower wraps the app's exception in its own."""
    while err.__cause__ is not None:
        err = err.__cause__
    return f"{type(err).__name__}: {err}"
