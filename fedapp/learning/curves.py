"""The final model's curves on the global test set (``curves.json``), per task.

Binary: ROC and precision-recall curves and the confusion matrix; multiclass:
the confusion matrix over the classes; regression: predicted against actual
values (a sample) and the residuals' quantiles. Computed once, at the end of
a run, on the server-held global test set; the UI only draws them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from fedapp.data.stats import TargetEncoding
from fedapp.settings import Task

# A curve keeps at most this many points: enough to draw, small to store.
MAX_POINTS = 200
# Rows of a regression's predicted-against-actual scatter.
MAX_SCATTER = 500


def task_curves(encoding: TargetEncoding, y: np.ndarray, output: np.ndarray) -> dict[str, Any]:
    """The curves of ``encoding``'s task, with ``task`` saying which they are."""
    if encoding.task is Task.BINARY:
        return {"task": "binary", **binary_curves(y, output)}
    if encoding.task is Task.MULTICLASS:
        codes = np.asarray(y).astype(np.int64)
        matrix = confusion_matrix(
            codes, np.asarray(output).argmax(axis=1), labels=list(range(len(encoding.classes)))
        )
        return {
            "task": "multiclass",
            "rows": len(codes),
            "classes": list(encoding.classes),
            "confusion": matrix.tolist(),
        }
    actual, predicted = encoding.decode(y), encoding.decode(output)
    keep = np.random.default_rng(0).permutation(len(actual))[:MAX_SCATTER]
    residuals = predicted - actual
    return {
        "task": "regression",
        "rows": len(actual),
        "actual": [round(float(v), 6) for v in actual[keep]],
        "predicted": [round(float(v), 6) for v in predicted[keep]],
        "residual_quantiles": {
            str(q): float(np.quantile(residuals, q)) for q in (0.05, 0.25, 0.5, 0.75, 0.95)
        },
    }


def binary_curves(y_true: np.ndarray, y_prob: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """ROC and precision-recall points and the confusion matrix at ``threshold``.

    Parameters
    ----------
    y_true : np.ndarray
        Labels, 0 or 1.
    y_prob : np.ndarray
        Predicted probabilities of class 1.
    threshold : float
        Where a probability counts as a positive prediction (the metrics' 0.5).

    Returns
    -------
    dict[str, Any]
        ``rows``, ``positives``, ``threshold``, ``confusion`` (``tn``, ``fp``,
        ``fn``, ``tp``) and, when both classes are present, ``roc`` (``fpr``,
        ``tpr``, ``auc``) and ``pr`` (``recall``, ``precision``, ``auc``: the
        average precision, as the run's ``pr_auc``); with one class the
        curves are ``None``, as AUC is undefined.

    """
    actual = (np.asarray(y_true, dtype=np.float64).ravel() >= 0.5).astype(np.int64)
    prob = np.asarray(y_prob, dtype=np.float64).ravel()
    tn, fp, fn, tp = confusion_matrix(
        actual, (prob >= threshold).astype(np.int64), labels=[0, 1]
    ).ravel()
    out: dict[str, Any] = {
        "rows": len(actual),
        "positives": int(actual.sum()),
        "threshold": threshold,
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "roc": None,
        "pr": None,
    }
    if len(np.unique(actual)) < 2:
        return out
    fpr, tpr, _ = roc_curve(actual, prob)
    precision, recall, _ = precision_recall_curve(actual, prob)
    auc, pr_auc = roc_auc_score(actual, prob), average_precision_score(actual, prob)
    out["roc"] = {"fpr": _thin(fpr), "tpr": _thin(tpr), "auc": float(auc)}
    out["pr"] = {"recall": _thin(recall), "precision": _thin(precision), "auc": float(pr_auc)}
    return out


def _thin(values: np.ndarray) -> list[float]:
    """At most :data:`MAX_POINTS` evenly spaced points of a curve, its ends kept."""
    if len(values) > MAX_POINTS:
        values = values[np.linspace(0, len(values) - 1, MAX_POINTS).round().astype(int)]
    return [round(float(v), 6) for v in values]
