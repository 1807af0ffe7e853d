"""Decision thresholds of a binary model: confusion counts, the metric per threshold, the best one.

Pure NumPy (no Keras, no Flower). A federation calibrates its threshold
from counts alone: each client counts, on its own held-out rows, the true and
false positives and negatives at every threshold of :data:`GRID`
(:func:`confusion_counts`); the server sums them and picks the threshold
whose pooled counts score best (:func:`best_threshold`). The centralized
baseline is calibrated by the same functions on its own predictions, so the
two thresholds are chosen alike.

A prediction is positive at or above the threshold, as
:data:`fedapp.learning.metrics.THRESHOLD` is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from fedapp.settings.specs import ThresholdMetric

# 0.01, 0.02, ..., 0.99: fine enough for a decision, coarse enough that the
# counts say little about any one row.
GRID: tuple[float, ...] = tuple(round(k / 100, 2) for k in range(1, 100))
# The columns of a counts array, in order.
COUNTS = ("tp", "fp", "tn", "fn")


def confusion_counts(
    y_true: np.ndarray, y_prob: np.ndarray, thresholds: Sequence[float] = GRID
) -> np.ndarray:
    """True/false positives and negatives of ``y_prob`` at each threshold.

    Parameters
    ----------
    y_true : np.ndarray
        0/1 labels.
    y_prob : np.ndarray
        Predicted probabilities of class 1.
    thresholds : Sequence[float]
        A row is predicted positive at or above each threshold.

    Returns
    -------
    np.ndarray
        ``(len(thresholds), 4)`` integers: ``tp, fp, tn, fn`` (:data:`COUNTS`) per threshold.

    """
    actual = np.asarray(y_true, dtype=np.float64).ravel() >= 0.5
    p = np.asarray(y_prob, dtype=np.float64).ravel()
    positive = p[None, :] >= np.asarray(thresholds, dtype=np.float64)[:, None]
    tp = (positive & actual).sum(axis=1)
    fp = (positive & ~actual).sum(axis=1)
    fn = actual.sum() - tp
    tn = (~actual).sum() - fp
    return np.stack([tp, fp, tn, fn], axis=1).astype(np.int64)


def encode_counts(counts: np.ndarray) -> str:
    """A counts array as compact JSON text (a metric value Flower can carry)."""
    return json.dumps(np.asarray(counts, dtype=np.int64).tolist(), separators=(",", ":"))


def decode_counts(text: str | bytes, thresholds: int) -> np.ndarray:
    """Read :func:`encode_counts`' text back, checking it holds ``thresholds`` rows of 4 counts.

    Raises
    ------
    ValueError
        For text that is not such an array of non-negative integers.

    """
    counts = np.asarray(json.loads(text))
    if counts.shape != (thresholds, len(COUNTS)) or not np.issubdtype(counts.dtype, np.integer):
        raise ValueError(f"expected {thresholds} rows of {len(COUNTS)} integer counts")
    if (counts < 0).any():
        raise ValueError("counts must not be negative")
    return counts.astype(np.int64)


def pooled(counts: Iterable[np.ndarray]) -> np.ndarray:
    """The sum of several clients' counts (the counts of their rows together)."""
    return np.sum(np.stack(list(counts)), axis=0)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, 0 where ``den`` is 0 (as scikit-learn's ``zero_division=0``)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def metric_values(counts: np.ndarray, metric: ThresholdMetric) -> np.ndarray:
    """``metric`` at each row of ``counts``, larger being better.

    F1 is ``2tp / (2tp + fp + fn)``, accuracy ``(tp + tn) / n``, Youden's J
    ``tp / (tp + fn) + tn / (tn + fp) - 1``; a cost is the mean cost per row
    ``(FP·fp + FN·fn) / n``, negated so that the least cost is the largest value.
    """
    tp, fp, tn, fn = np.asarray(counts, dtype=np.float64).T
    rows = tp + fp + tn + fn
    if metric.kind == "f1":
        return _ratio(2 * tp, 2 * tp + fp + fn)
    if metric.kind == "accuracy":
        return _ratio(tp + tn, rows)
    if metric.kind == "youden":
        return _ratio(tp, tp + fn) + _ratio(tn, tn + fp) - 1
    return -_ratio(metric.fp_cost * fp + metric.fn_cost * fn, rows)


def best_threshold(
    counts: np.ndarray, metric: ThresholdMetric, thresholds: Sequence[float] = GRID
) -> tuple[float, float]:
    """The threshold whose counts score best on ``metric``, and that score.

    Ties (a plateau of equal scores) go to the threshold nearest 0.5, then
    the lower one: the least departure from the usual decision.

    Returns
    -------
    tuple[float, float]
        The threshold and its score; a cost's score is the mean cost per row
        (positive, smaller being better), as the user reads it.

    """
    values = metric_values(counts, metric)
    grid = np.asarray(thresholds, dtype=np.float64)
    best = values.max()
    tied = np.flatnonzero(np.isclose(values, best, rtol=0, atol=1e-12))
    pick = tied[np.lexsort((grid[tied], np.abs(grid[tied] - 0.5)))[0]]
    score = float(values[pick])
    return float(grid[pick]), -score if metric.kind == "cost" else score


def count_metrics(counts: np.ndarray) -> dict[str, float]:
    """Accuracy, F1, precision and recall of one ``tp, fp, tn, fn`` row (0 where undefined)."""
    tp, fp, tn, fn = (float(c) for c in np.asarray(counts).ravel())
    return {
        "accuracy": float(_ratio(tp + tn, tp + fp + tn + fn)),
        "f1": float(_ratio(2 * tp, 2 * tp + fp + fn)),
        "precision": float(_ratio(tp, tp + fp)),
        "recall": float(_ratio(tp, tp + fn)),
    }


def metrics_at(y_true: np.ndarray, y_prob: np.ndarray, threshold: float) -> dict[str, float]:
    """:func:`count_metrics` of ``y_prob`` against ``y_true`` at ``threshold``."""
    return count_metrics(confusion_counts(y_true, y_prob, (threshold,))[0])


@dataclass(frozen=True)
class Calibration:
    """A decision threshold and what it scores.

    Attributes
    ----------
    value : float
        The threshold.
    source : str
        ``calibrated`` (picked on counts) or ``fixed`` (given by ``threshold``).
    metrics : dict[str, float]
        Accuracy, F1, precision and recall at ``value`` on the rows counted.
    rows : int
        How many rows were counted.
    metric : str | None
        What calibration optimised (``f1``, ``cost:1,5``), when calibrated.
    score : float | None
        Its value at ``value`` (a cost: the mean cost per row).

    """

    value: float
    source: str
    metrics: dict[str, float]
    rows: int
    metric: str | None = None
    score: float | None = None

    def to_dict(self) -> dict[str, object]:
        """The summary's record of it."""
        out: dict[str, object] = {"value": self.value, "source": self.source}
        if self.metric is not None:
            out |= {"metric": self.metric, "score": self.score}
        return out | {"rows": self.rows, "metrics": self.metrics}


def calibrate(
    counts: np.ndarray,
    metric: ThresholdMetric | None,
    thresholds: Sequence[float] = GRID,
) -> Calibration:
    """The threshold of ``counts``: the best on ``metric``, or the one threshold given.

    Parameters
    ----------
    counts : np.ndarray
        ``(len(thresholds), 4)`` counts (:func:`confusion_counts`, :func:`pooled`).
    metric : ThresholdMetric | None
        What to optimise; ``None`` keeps the single threshold of ``thresholds``.
    thresholds : Sequence[float]
        The thresholds ``counts`` are at.

    """
    rows = int(np.asarray(counts)[0].sum()) if len(counts) else 0
    if metric is None:
        [value] = thresholds
        return Calibration(float(value), "fixed", count_metrics(counts[0]), rows)
    value, score = best_threshold(counts, metric, thresholds)
    at = count_metrics(counts[list(thresholds).index(value)])
    return Calibration(value, "calibrated", at, rows, str(metric), score)


def calibrate_predictions(
    y_true: np.ndarray, y_prob: np.ndarray, metric: ThresholdMetric | None, fixed: float = 0.5
) -> Calibration:
    """:func:`calibrate` on predictions: ``metric``'s best of :data:`GRID`, or ``fixed``."""
    thresholds = GRID if metric is not None else (fixed,)
    return calibrate(confusion_counts(y_true, y_prob, thresholds), metric, thresholds)
