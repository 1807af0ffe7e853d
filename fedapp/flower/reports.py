"""What a round's ``fit`` and ``evaluate`` events say, from plain values (no Flower types).

The run strategy turns each of Flower's ``FitRes``/``EvaluateRes`` into a
:class:`ClientReport` and these functions into an event's ``metrics``,
``clients`` (keyed by partition id, as a string) and extra fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedapp.protection import anomaly, privacy
from fedapp.runs import METRIC_NAMES


@dataclass(frozen=True)
class ClientReport:
    """One client's result of a round.

    Attributes
    ----------
    partition_id : int
        Which institution.
    examples : int
        Examples it trained or evaluated on.
    metrics : Mapping[str, Any]
        The metrics it reported.

    """

    partition_id: int
    examples: int
    metrics: Mapping[str, Any]


def weighted_means(reports: Sequence[ClientReport]) -> dict[str, float]:
    """Example-weighted mean of each metric over clients (NaNs skipped).

    ``mean_k = Σ_i n_i m_ik / Σ_i n_i`` over the clients ``i`` whose ``m_ik``
    is finite; a metric no client reports (finitely) is left out.
    """
    out: dict[str, float] = {}
    for name in METRIC_NAMES:
        pairs = [
            (r.examples, float(r.metrics[name]))
            for r in reports
            if name in r.metrics and np.isfinite(float(r.metrics[name]))
        ]
        total = sum(n for n, _ in pairs)
        if total:
            out[name] = sum(n * v for n, v in pairs) / total
    return out


def fit_fields(
    reports: Sequence[ClientReport],
    signals: anomaly.RoundSignals | None,
    failures: int,
    secure: bool = False,
) -> tuple[dict[str, float], dict[str, dict[str, Any]], dict[str, Any]]:
    """The ``metrics``, ``clients`` and extra fields of a round's ``fit`` event.

    Parameters
    ----------
    reports : Sequence[ClientReport]
        The results aggregated, in partition order.
    signals : anomaly.RoundSignals | None
        Their update signals, in the same order; ``None`` when none were scored.
    failures : int
        Clients that failed the round.
    secure : bool
        Aggregated under SecAgg+: no client's own update exists to score.

    Returns
    -------
    tuple[dict[str, float], dict[str, dict[str, Any]], dict[str, Any]]
        The mean training loss; each client's loss, examples, signals and
        (record-level DP) ε; ``failures`` and either ``flagged`` (the
        partitions the signals flag) or ``secure-aggregation``.

    """
    losses = [float(r.metrics["train-loss"]) for r in reports]
    records = anomaly.client_records(signals) if signals is not None else [{} for _ in reports]
    clients = {
        str(r.partition_id): {"train-loss": r.metrics["train-loss"], "examples": r.examples}
        | record
        | privacy.client_fields(r.metrics)
        for r, record in zip(reports, records, strict=True)
    }
    extra: dict[str, Any] = {"failures": failures}
    if secure:
        # No update was scored, so none is said to be unflagged.
        extra["secure-aggregation"] = True
    else:
        flagged = signals.flagged if signals is not None else ()
        extra["flagged"] = [reports[i].partition_id for i in flagged]
    mean = float(np.mean(losses)) if losses else float("nan")
    return {"train-loss": mean}, clients, extra


def evaluate_fields(
    reports: Sequence[ClientReport],
) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """The ``metrics`` (:func:`weighted_means`) and ``clients`` of a round's ``evaluate`` event."""
    clients = {
        str(r.partition_id): {k: r.metrics[k] for k in METRIC_NAMES if k in r.metrics}
        | {"examples": r.examples}
        for r in reports
    }
    return weighted_means(reports), clients
