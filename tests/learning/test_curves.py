"""curves.json's content: ROC, precision-recall and the confusion matrix of a model's scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fedapp.learning.curves import MAX_POINTS, binary_curves


def test_the_confusion_matrix_counts_each_cell_at_the_threshold() -> None:
    # Prepare: two positives (one caught), three negatives (one false alarm)
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.2, 0.7, 0.1, 0.3])

    # Execute
    curves = binary_curves(y, p)

    # Assert
    assert curves["confusion"] == {"tn": 2, "fp": 1, "fn": 1, "tp": 1}
    assert (curves["rows"], curves["positives"], curves["threshold"]) == (5, 2, 0.5)


def test_the_curves_run_from_corner_to_corner_and_carry_their_area() -> None:
    # Prepare
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 5000)
    p = np.clip(0.3 * y + rng.random(5000) * 0.7, 0, 1)

    # Execute
    curves = binary_curves(y, p)

    # Assert: thinned to MAX_POINTS, ends kept, same AUC as scikit-learn's
    roc = curves["roc"]
    assert len(roc["fpr"]) == MAX_POINTS and len(curves["pr"]["recall"]) == MAX_POINTS
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)
    assert roc["auc"] == pytest.approx(roc_auc_score(y, p))
    assert np.all(np.diff(roc["fpr"]) >= 0)


def test_a_single_class_test_set_has_no_curves() -> None:
    # Execute
    curves = binary_curves(np.zeros(4), np.array([0.1, 0.6, 0.2, 0.3]))

    # Assert
    assert curves["roc"] is None and curves["pr"] is None
    assert curves["confusion"] == {"tn": 3, "fp": 1, "fn": 0, "tp": 0}
