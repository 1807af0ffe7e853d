"""What a round's ``fit`` and ``evaluate`` events say, from plain values (no Flower types).

The run strategy turns each of Flower's ``FitRes``/``EvaluateRes`` into a
:class:`ClientReport` and these functions into an event's ``metrics``,
``clients`` (keyed by partition id, as a string) and extra fields.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedapp.flower.protocol import PARTITION_KEY
from fedapp.protection import anomaly, privacy
from fedapp.runs import metric_names


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


def _metrics_of(reports: Sequence[ClientReport]) -> tuple[str, ...]:
    """The scores the clients report, in display order (every task's known names first)."""
    reported = dict.fromkeys(
        k for r in reports for k in r.metrics if k not in (PARTITION_KEY, "train-loss")
    )
    known = [m for task in ("binary", "multiclass", "regression") for m in metric_names(task)]
    ordered = [m for m in dict.fromkeys(known) if m in reported]
    return (*ordered, *sorted(k for k in reported if k not in ordered))


# Scores pooled as a root mean square: the pooled RMSE is the root of the
# example-weighted mean of the clients' squared RMSEs, exactly.
_ROOT_MEAN_SQUARE = frozenset({"rmse"})


def weighted_means(reports: Sequence[ClientReport]) -> dict[str, float]:
    """Example-weighted mean of each metric over clients (NaNs skipped).

    ``mean_k = Σ_i n_i m_ik / Σ_i n_i`` over the clients ``i`` whose ``m_ik``
    is finite; a metric no client reports (finitely) is left out. RMSE is
    pooled as ``sqrt(Σ_i n_i m_ik² / Σ_i n_i)``, the RMSE over every client's rows.
    """
    out: dict[str, float] = {}
    for name in _metrics_of(reports):
        pairs = [(r.examples, float(r.metrics[name])) for r in _scored(reports, name)]
        total = sum(n for n, _ in pairs)
        if not total:
            continue
        if name in _ROOT_MEAN_SQUARE:
            out[name] = float(np.sqrt(sum(n * v * v for n, v in pairs) / total))
        else:
            out[name] = sum(n * v for n, v in pairs) / total
    return out


def coverage(reports: Sequence[ClientReport]) -> dict[str, int]:
    """How many clients each of :func:`weighted_means`' metrics is a mean over.

    A client with too few test rows, or test rows of one class, has no AUC:
    a weighted AUC over 1 of 12 clients is that one client's.
    """
    return {name: len(_scored(reports, name)) for name in _metrics_of(reports)}


def _scored(reports: Sequence[ClientReport], name: str) -> list[ClientReport]:
    """The reports with a finite value of metric ``name``."""
    return [r for r in reports if name in r.metrics and np.isfinite(float(r.metrics[name]))]


@dataclass(frozen=True)
class ClientFailure:
    """A client that was asked for a result in a round and gave none.

    Attributes
    ----------
    partition_id : int | None
        Which institution, when it can be told.
    reason : str
        Why, in one line.

    """

    partition_id: int | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The entry of an event's ``failed`` list."""
        return {"partition": self.partition_id, "reason": self.reason}


def failed_clients(
    asked: Iterable[int | None],
    answered: Iterable[int],
    named: Mapping[int, str],
    unnamed: Sequence[str],
) -> list[ClientFailure]:
    """Which of the clients asked in a round failed, and why.

    Parameters
    ----------
    asked : Iterable[int | None]
        The partitions asked (``None`` for a node whose partition is not known).
    answered : Iterable[int]
        The partitions whose results came back.
    named : Mapping[int, str]
        Failures whose partition is known (a reply with an error status), by partition.
    unnamed : Sequence[str]
        The reasons of failures that name no client (an exception in transport,
        such as a client process that died). They go to the asked partitions
        that neither answered nor are in ``named``: the same reason to each when
        there is one, else all the reasons joined.

    """
    answered = set(answered)
    failures = [ClientFailure(pid, reason) for pid, reason in sorted(named.items())]
    silent = sorted(
        {p for p in asked if p is not None} - answered - set(named),
    )
    reasons = list(dict.fromkeys(short_reason(r) for r in unnamed))
    if not reasons:
        return failures
    shared = reasons[0] if len(reasons) == 1 else "; ".join(reasons)
    count = len(unnamed)
    failures += [ClientFailure(pid, shared) for pid in silent[:count]]
    failures += [ClientFailure(None, shared)] * max(count - len(silent), 0)
    return failures


_CLASS_REPR = re.compile(r"<class '(?:[\w.]*\.)?(\w+)'>:<'?")


# Flower's error for a message that expired (no reply within its time to live,
# the round timeout) or whose node left the federation.
_UNAVAILABLE = "Message Unavailable"
UNAVAILABLE_REASON = "no reply within round-timeout, or the node left the federation"


def short_reason(text: str) -> str:
    """The first line of what went wrong, without Flower's wrapping around it."""
    if _UNAVAILABLE in text:
        return UNAVAILABLE_REASON
    inner = re.search(r"\(reason: (.*?)\)\. It originated", text, re.DOTALL)
    text = inner.group(1) if inner else text
    # Flower writes a client's error as "<class 'pkg.Error'>:<'message'>".
    text = _CLASS_REPR.sub(r"\1: ", text).replace("'>", "")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("Traceback"):
            return line
    return text.strip() or "unknown error"


def fit_fields(
    reports: Sequence[ClientReport],
    signals: anomaly.RoundSignals | None,
    failed: Sequence[ClientFailure],
    secure: bool = False,
) -> tuple[dict[str, float], dict[str, dict[str, Any]], dict[str, Any]]:
    """The ``metrics``, ``clients`` and extra fields of a round's ``fit`` event.

    Parameters
    ----------
    reports : Sequence[ClientReport]
        The results aggregated, in partition order.
    signals : anomaly.RoundSignals | None
        Their update signals, in the same order; ``None`` when none were scored.
    failed : Sequence[ClientFailure]
        Clients that failed the round.
    secure : bool
        Aggregated under SecAgg+: no client's own update exists to score.

    Returns
    -------
    tuple[dict[str, float], dict[str, dict[str, Any]], dict[str, Any]]
        The mean training loss; each client's loss, examples, signals and
        (record-level DP) ε; ``failures`` and ``failed`` (:func:`failure_fields`)
        and either ``flagged`` (the partitions the signals flag) or
        ``secure-aggregation``.

    """
    losses = [float(r.metrics["train-loss"]) for r in reports]
    records = anomaly.client_records(signals) if signals is not None else [{} for _ in reports]
    clients = {
        str(r.partition_id): {"train-loss": r.metrics["train-loss"], "examples": r.examples}
        | record
        | privacy.client_fields(r.metrics)
        for r, record in zip(reports, records, strict=True)
    }
    extra: dict[str, Any] = failure_fields(failed)
    if secure:
        # No update was scored, so none is said to be unflagged.
        extra["secure-aggregation"] = True
    else:
        flagged = signals.flagged if signals is not None else ()
        extra["flagged"] = [reports[i].partition_id for i in flagged]
    mean = float(np.mean(losses)) if losses else float("nan")
    return {"train-loss": mean}, clients, extra


def evaluate_fields(
    reports: Sequence[ClientReport], failed: Sequence[ClientFailure] = ()
) -> tuple[dict[str, float], dict[str, dict[str, Any]], dict[str, Any]]:
    """The ``metrics`` (:func:`weighted_means`), ``clients`` and extras of an ``evaluate`` event.

    The extra fields say how many clients reported (``reported``), how many
    each mean covers (``coverage``, :func:`coverage`) and who failed
    (:func:`failure_fields`).
    """
    clients = {
        str(r.partition_id): {k: r.metrics[k] for k in _metrics_of([r])} | {"examples": r.examples}
        for r in reports
    }
    extra = {"reported": len(reports), "coverage": coverage(reports)} | failure_fields(failed)
    return weighted_means(reports), clients, extra


def failure_fields(failed: Sequence[ClientFailure]) -> dict[str, Any]:
    """An event's ``failures`` (how many) and ``failed`` (who and why)."""
    return {"failures": len(failed), "failed": [f.to_dict() for f in failed]}
