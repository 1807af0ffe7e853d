"""A model's scores per task, from its outputs (NumPy and scikit-learn; no Keras).

The names and their display order are :data:`fedapp.runs.TASK_METRICS`'s.
:func:`score` takes what the model predicts for transformed rows (``y`` as
:class:`~fedapp.data.TargetEncoding` encodes it) and returns the task's scores;
a regression target is scored in its own units.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_recall_fscore_support,
    r2_score,
    recall_score,
    roc_auc_score,
)

from fedapp.data.stats import TargetEncoding
from fedapp.runs.metrics import CLASS_RECALL
from fedapp.settings import Task

_EPS = 1e-7
# A binary prediction is positive at or above this probability.
THRESHOLD = 0.5


def score(encoding: TargetEncoding, y: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """The task's scores of a model's ``output`` against the encoded targets ``y``.

    Parameters
    ----------
    encoding : TargetEncoding
        The run's target encoding (task, classes, a regression target's scale).
    y : np.ndarray
        Encoded targets: 0/1, class codes, or the standardised value.
    output : np.ndarray
        The model's output: the positive class's probability ``(n,)``, the
        class probabilities ``(n, k)``, or the standardised prediction ``(n,)``.

    """
    if encoding.task is Task.BINARY:
        return binary_metrics(y, output)
    if encoding.task is Task.MULTICLASS:
        return multiclass_metrics(y, output, encoding.classes)
    return regression_metrics(y, output, encoding)


def binary_metrics(y_true: np.ndarray, y_prob: np.ndarray) -> dict[str, float]:
    """Score predicted probabilities of class 1 (``y_prob``) against 0/1 labels (``y_true``).

    Returns
    -------
    dict[str, float]
        ROC AUC, PR-AUC (average precision), accuracy, F1, precision and
        recall (all four at :data:`THRESHOLD`; 0 where undefined, e.g.
        precision with no predicted positive) and ``loss``, the log-loss.
        AUC and PR-AUC are ``nan`` when ``y_true`` has a single class.

    """
    y_true = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.clip(np.asarray(y_prob, dtype=np.float64).ravel(), _EPS, 1 - _EPS)
    loss = float(-np.mean(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)))
    actual = (y_true >= 0.5).astype(np.int64)
    predicted = (p >= THRESHOLD).astype(np.int64)
    # `labels` fixes the positive class even when a client's rows hold one class.
    precision, recall, f1, _ = precision_recall_fscore_support(
        actual, predicted, labels=[1], average="binary", pos_label=1, zero_division=0
    )
    ranked = len(np.unique(actual)) == 2  # ranking scores need both classes
    nan = float("nan")
    return {
        "auc": float(roc_auc_score(actual, p)) if ranked else nan,
        "pr_auc": float(average_precision_score(actual, p)) if ranked else nan,
        "accuracy": float(np.mean(predicted == actual)),
        "f1": float(f1),
        "precision": float(precision),
        "recall": float(recall),
        "loss": loss,
    }


def multiclass_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, classes: tuple[str, ...]
) -> dict[str, float]:
    """Score class probabilities against class codes.

    Returns
    -------
    dict[str, float]
        ``accuracy``; ``macro_f1`` over the classes present in ``y_true`` or
        predicted; ``macro_auc``, the mean one-vs-rest AUC over the classes
        present with other classes beside them (``nan`` with one class);
        ``loss``, the log-loss; and ``recall:<class>`` for each class present
        in ``y_true``.

    """
    codes = np.asarray(y_true).ravel().astype(np.int64)
    probs = np.clip(np.asarray(probabilities, dtype=np.float64), _EPS, 1.0)
    probs = probs / probs.sum(axis=1, keepdims=True)
    predicted = probs.argmax(axis=1)
    present = np.unique(codes)
    loss = float(-np.mean(np.log(probs[np.arange(len(codes)), codes])))
    aucs = [
        roc_auc_score(codes == k, probs[:, k])
        for k in present
        if 0 < (codes == k).sum() < len(codes)
    ]
    recalls = recall_score(codes, predicted, labels=present, average=None, zero_division=0)
    out = {
        "accuracy": float(np.mean(predicted == codes)),
        "macro_f1": float(
            f1_score(
                codes,
                predicted,
                labels=np.union1d(present, predicted),
                average="macro",
                zero_division=0,
            )
        ),
        "macro_auc": float(np.mean(aucs)) if aucs else float("nan"),
        "loss": loss,
    }
    out |= {f"{CLASS_RECALL}{classes[k]}": float(r) for k, r in zip(present, recalls, strict=True)}
    return out


def regression_metrics(
    y_true: np.ndarray, predicted: np.ndarray, encoding: TargetEncoding
) -> dict[str, float]:
    """Score standardised predictions against standardised targets, in the target's units.

    Returns
    -------
    dict[str, float]
        ``rmse``, ``mae`` and ``r2`` of the de-standardised values, and
        ``loss``, the mean squared error of the standardised ones (what
        training minimises). ``r2`` is ``nan`` for fewer than two rows.

    """
    standard = np.asarray(y_true, dtype=np.float64).ravel()
    guess = np.asarray(predicted, dtype=np.float64).ravel()
    actual, value = encoding.decode(standard), encoding.decode(guess)
    error = value - actual
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": float(r2_score(actual, value)) if len(actual) > 1 else float("nan"),
        "loss": float(np.mean((guess - standard) ** 2)),
    }
