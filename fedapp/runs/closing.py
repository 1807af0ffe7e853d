"""What a run's summary says of its decision threshold and its clients' fine-tuned models.

``summary.json`` holds ``threshold`` (the federated model's, calibrated or
fixed), ``centralized_threshold`` (the centralized baseline's, chosen the
same way) and ``personalized`` (each client's kept and fine-tuned models on
its held-out rows). The CLI, the UI and the model card read them here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from fedapp.runs.metrics import metric_label

# A binary prediction is positive at or above this probability unless the run
# recorded another (fedapp.learning.metrics.THRESHOLD, which needs scikit-learn).
DEFAULT_THRESHOLD = 0.5
# The scores a threshold changes, in display order.
THRESHOLD_METRICS = ("accuracy", "f1", "precision", "recall")


def run_threshold(summary: Mapping[str, Any] | None) -> tuple[float, str]:
    """The threshold a run's model decides at, and where it comes from, in words.

    Runs without one (before thresholds were recorded, or stopped before
    calibration) decide at :data:`DEFAULT_THRESHOLD`.
    """
    record = (summary or {}).get("threshold") or {}
    value = record.get("value")
    if not isinstance(value, int | float) or not 0 < value < 1:
        return DEFAULT_THRESHOLD, "the default"
    if record.get("source") == "calibrated":
        return float(value), f"the run's, calibrated for {_metric(record)}"
    return float(value), "the run's, as set"


def threshold_note(summary: Mapping[str, Any] | None, key: str = "threshold") -> str | None:
    """One line on a run's threshold (``key``: ``threshold`` or ``centralized_threshold``)."""
    record = (summary or {}).get(key)
    if not record:
        return None
    value = record.get("value")
    rows = record.get("rows")
    where = "the clients' held-out rows" if key == "threshold" else "the global test set"
    counted = f" ({rows} rows)" if isinstance(rows, int) else ""
    if record.get("source") == "calibrated":
        score = record.get("score")
        shown = f", {_metric(record)} {score:.4f}" if _finite(score) else ""
        return f"threshold {value:g}: calibrated on {where}{counted}{shown}"
    return f"threshold {value:g}: as set"


def threshold_columns(summary: Mapping[str, Any] | None) -> dict[str, dict[str, float | None]]:
    """The thresholded scores at 0.5 and at each recorded threshold, by column title.

    ``federated at 0.5`` and ``centralized at 0.5`` are the global test set's
    final scores; ``federated at T`` is of the clients' held-out rows pooled
    (in a simulation, the same rows), ``centralized at T`` of the global
    test set. Empty for a run without a recorded threshold.
    """
    summary = summary or {}
    columns: dict[str, dict[str, float | None]] = {}
    for model, key in (("federated", "threshold"), ("centralized", "centralized_threshold")):
        record = summary.get(key) or {}
        at = record.get("metrics")
        if not at:
            continue
        columns[f"{model} at 0.5"] = _pick(summary.get(model))
        columns[f"{model} at {record['value']:g}"] = _pick(at)
    return columns


def fine_tuned(summary: Mapping[str, Any] | None, pid: str, metric: str) -> float | None:
    """Client ``pid``'s fine-tuned model's ``metric`` on its held-out rows, if it was fine-tuned."""
    clients = ((summary or {}).get("personalized") or {}).get("clients") or {}
    value = ((clients.get(pid) or {}).get("fine_tuned") or {}).get(metric)
    return float(value) if _finite(value) else None


def personalized_note(summary: Mapping[str, Any] | None, metric: str, task: str) -> str | None:
    """What the fine-tuned column is scored on, with the kept model's mean there to compare."""
    personal = (summary or {}).get("personalized")
    if not personal:
        return None
    mean = personal.get("mean") or {}
    before = (mean.get("federated") or {}).get(metric)
    after = (mean.get("fine_tuned") or {}).get(metric)
    epochs = personal.get("epochs")
    text = (
        f"federated + fine-tuned: the federated model after {epochs} epoch(s) on each "
        f"institution's own rows, scored on its own held-out rows"
    )
    if _finite(before) and _finite(after):
        name = metric_label(metric, task)
        text += f" (mean {name} {after:.4f}, vs {before:.4f} for the federated model there)"
    return text


def _pick(scores: Mapping[str, Any] | None) -> dict[str, float | None]:
    scores = scores or {}
    return {m: float(scores[m]) if _finite(scores.get(m)) else None for m in THRESHOLD_METRICS}


def _metric(record: Mapping[str, Any]) -> str:
    name = str(record.get("metric") or "f1")
    return metric_label(name) if not name.startswith("cost") else f"the least cost ({name})"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
