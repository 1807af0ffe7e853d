"""Decision thresholds: counts per threshold, the metric each picks, the cost spec, the bounds."""

from __future__ import annotations

import numpy as np
import pytest

from fedapp.errors import UsageError
from fedapp.learning import threshold
from fedapp.learning.metrics import binary_metrics
from fedapp.settings import RunConfig
from fedapp.settings.specs import ThresholdMetric, as_threshold

# Made-up pooled counts (tp, fp, tn, fn) at three thresholds, 100 rows with 20
# positives, built so that each metric prefers a different threshold:
#   0.2: tp 18 fp 30 tn 50 fn 2  -> F1 0.529, accuracy 0.68, J 0.525, cost(1,10) 0.50
#   0.5: tp 12 fp 6  tn 74 fn 8  -> F1 0.632, accuracy 0.86, J 0.525, cost(1,10) 0.86
#   0.8: tp 4  fp 0  tn 80 fn 16 -> F1 0.333, accuracy 0.84, J 0.200, cost(1,10) 1.60
GRID = (0.2, 0.5, 0.8)
COUNTS = np.array([[18, 30, 50, 2], [12, 6, 74, 8], [4, 0, 80, 16]])


@pytest.mark.parametrize(
    ("metric", "best", "score"),
    [
        ("f1", 0.5, 24 / 38),
        ("accuracy", 0.5, 0.86),
        ("cost:1,10", 0.2, 0.5),
        ("cost:1,0", 0.8, 0.0),  # false positives alone cost: never say positive
    ],
)
def test_each_metric_picks_its_best_threshold(metric: str, best: float, score: float) -> None:
    # Execute
    value, found = threshold.best_threshold(COUNTS, ThresholdMetric.parse(metric), GRID)

    # Assert
    assert value == best
    assert found == pytest.approx(score)


def test_youden_picks_the_largest_j_and_breaks_ties_towards_one_half() -> None:
    # Prepare: J is 0.525 at 0.2 and at 0.5 (made-up counts above)
    youden = ThresholdMetric.parse("youden")

    # Execute
    values = threshold.metric_values(COUNTS, youden)
    value, score = threshold.best_threshold(COUNTS, youden, GRID)

    # Assert
    np.testing.assert_allclose(values, [18 / 20 + 50 / 80 - 1, 12 / 20 + 74 / 80 - 1, 0.2])
    assert value == 0.5 and score == pytest.approx(0.525)


def test_counts_match_the_metrics_at_one_half_and_pool_by_summing() -> None:
    # Prepare
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.3).astype(float)
    p = np.clip(0.3 * y + rng.random(300) * 0.7, 0, 1)

    # Execute
    counts = threshold.confusion_counts(y, p)
    halves = [threshold.confusion_counts(y[s], p[s]) for s in (slice(0, 120), slice(120, None))]
    at_half = threshold.count_metrics(counts[threshold.GRID.index(0.5)])

    # Assert
    assert counts.shape == (99, 4) and (counts.sum(axis=1) == 300).all()
    np.testing.assert_array_equal(threshold.pooled(halves), counts)
    reference = binary_metrics(y, p)
    for name, value in at_half.items():
        assert value == pytest.approx(reference[name])


def test_counts_travel_as_text_and_bad_text_is_refused() -> None:
    # Prepare
    counts = threshold.confusion_counts([0, 1, 1], [0.2, 0.6, 0.9], (0.5, 0.7))

    # Execute
    text = threshold.encode_counts(counts)

    # Assert
    np.testing.assert_array_equal(threshold.decode_counts(text, 2), counts)
    with pytest.raises(ValueError, match="3 rows of 4"):
        threshold.decode_counts(text, 3)
    with pytest.raises(ValueError, match="negative"):
        threshold.decode_counts("[[1,-1,0,0],[0,0,0,0]]", 2)


def test_calibrate_reports_the_metrics_at_the_chosen_or_fixed_threshold() -> None:
    # Execute
    chosen = threshold.calibrate(COUNTS, ThresholdMetric("f1"), GRID)
    fixed = threshold.calibrate(COUNTS[2:], None, (0.8,))

    # Assert
    assert chosen.to_dict() == {
        "value": 0.5, "source": "calibrated", "metric": "f1", "score": pytest.approx(24 / 38),
        "rows": 100,
        "metrics": {"accuracy": 0.86, "f1": pytest.approx(24 / 38), "precision": 12 / 18,
                    "recall": 0.6},
    }  # fmt: skip
    assert fixed.source == "fixed" and fixed.value == 0.8 and fixed.metrics["precision"] == 1.0


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("f1", "f1"), ("Accuracy", "accuracy"), ("youden", "youden"), ("cost:1,5", "cost:1,5"),
     ("cost:0.5,2.0", "cost:0.5,2"), ("cost:0,3", "cost:0,3")],
)  # fmt: skip
def test_threshold_metric_specs_parse(text: str, parsed: str) -> None:
    assert str(ThresholdMetric.parse(text)) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [("cost:1", "needs two numbers"), ("cost:1,2,3", "needs two numbers"),
     ("cost:x,1", "needs two numbers"), ("cost:0,0", "not both 0"), ("cost:-1,1", ">= 0"),
     ("cost:inf,1", ">= 0"), ("f1:2", "takes no value"), ("mcc", "must be one of")],
)  # fmt: skip
def test_bad_threshold_metric_specs_are_refused(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ThresholdMetric.parse(text)


@pytest.mark.parametrize("value", [0, 1, 1.5, -0.1, "0", "1.0", "nan", "inf", "high"])
def test_a_threshold_outside_zero_one_is_refused(value: object) -> None:
    with pytest.raises(UsageError, match=r"strictly between 0 and 1"):
        as_threshold(value)


def test_a_threshold_is_held_as_its_text() -> None:
    # Execute
    fixed = RunConfig(threshold=0.30)
    auto = RunConfig(threshold="AUTO", threshold_metric="cost:1,5")

    # Assert
    assert fixed.threshold == "0.3" and fixed.fixed_threshold == 0.3
    assert not fixed.calibrates_threshold and fixed.resolved_threshold_metric == "f1"
    assert auto.calibrates_threshold and auto.fixed_threshold is None
    again = RunConfig.from_flwr(auto.to_flwr())
    assert (again.threshold, again.threshold_metric) == ("auto", ThresholdMetric("cost", 1, 5))
