"""Per-client anomaly signals against hand-computed values (Prepare / Execute / Assert)."""

import json
import math

import numpy as np
import pytest

from fedapp.protection.anomaly import (
    MIN_CLIENTS_TO_FLAG,
    can_flag,
    client_records,
    cosine_similarity,
    flat_update,
    robust_z_scores,
    round_signals,
)

SQRT2 = math.sqrt(2)


def test_flat_update_concatenates_layer_differences() -> None:
    got = flat_update([np.array([[1.0, 2.0]]), np.array([5.0])], [np.zeros((1, 2)), np.ones(1)])
    np.testing.assert_array_equal(got, [1.0, 2.0, 4.0])


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([1, 0], [0, 1], 0.0),
        ([1, 1], [-2, -2], -1.0),
        ([3, 4], [4, 3], 24 / 25),
    ],
)
def test_cosine_similarity(a: list, b: list, expected: float) -> None:
    assert cosine_similarity(np.array(a, float), np.array(b, float)) == pytest.approx(expected)


def test_cosine_of_a_zero_update_is_nan() -> None:
    assert math.isnan(cosine_similarity(np.zeros(2), np.array([1.0, 0.0])))


def test_robust_z_scores_by_hand() -> None:
    # median 3, |x - 3| = (2, 1, 0, 1, 97) -> MAD 1; z = 0.6745 * (x - 3)
    z = robust_z_scores([1, 2, 3, 4, 100])
    np.testing.assert_allclose(z, 0.6745 * np.array([-2, -1, 0, 1, 97]))


def test_robust_z_scores_skip_non_finite_values() -> None:
    # median of (1, 3) is 2, MAD 1
    z = robust_z_scores([1.0, float("nan"), 3.0])
    np.testing.assert_allclose(z, [-0.6745, np.nan, 0.6745])


def test_robust_z_scores_with_zero_mad() -> None:
    # three of four agree exactly: the others are infinitely far, on their side
    np.testing.assert_array_equal(robust_z_scores([1, 1, 1, 5]), [0, 0, 0, np.inf])
    np.testing.assert_array_equal(robust_z_scores([2, 2, 0, 2]), [0, 0, -np.inf, 0])


def _signals(updates: list[tuple[float, float]], aggregate: tuple[float, float], threshold=3.5):
    start = [np.zeros(2)]
    return round_signals(start, [[np.array(u)] for u in updates], [np.array(aggregate)], threshold)


# Updates with norms (5, 5, 6, 8, 10) against the aggregate update (1, 1):
# cosines 7/(5*sqrt2) twice, 1/sqrt2 twice, and -14/(10*sqrt2) for the reversed one.
UPDATES = [(3.0, 4.0), (4.0, 3.0), (0.0, 6.0), (8.0, 0.0), (-6.0, -8.0)]


def test_round_signals_by_hand() -> None:
    # Execute
    s = _signals(UPDATES, (1.0, 1.0))
    # Assert: norms and cosines
    np.testing.assert_allclose(s.norms, [5, 5, 6, 8, 10])
    np.testing.assert_allclose(s.cosines, np.array([1.4, 1.4, 1, 1, -1.4]) / SQRT2)
    # norms: median 6, MAD 1
    np.testing.assert_allclose(s.norm_z, 0.6745 * np.array([-1, -1, 0, 2, 4]))
    # cosines: median 1/sqrt2, MAD 0.4/sqrt2; the reversed one is 2.4/sqrt2 below: -6 MADs
    np.testing.assert_allclose(s.cosine_z, 0.6745 * np.array([1, 1, 0, 0, -6]))
    # -z = 4.047 > 3.5: flagged by its direction alone
    assert s.flagged == (4,)
    assert _signals(UPDATES, (1.0, 1.0), threshold=4.1).flagged == ()


def test_a_large_norm_is_flagged_both_ways_and_a_high_cosine_never() -> None:
    # norm 50 against (5, 5, 6, 8): median 6, MAD 1 -> z = 0.6745 * 44; its cosine is the
    # median one, and the two above it (+inf: MAD 0) are not suspicious
    big = _signals([(3, 4), (4, 3), (0, 6), (8, 0), (0, 50)], (1, 1))
    assert big.norm_z[4] == pytest.approx(0.6745 * 44)
    assert list(big.cosine_z) == [np.inf, np.inf, 0, 0, 0]
    assert big.flagged == (4,)
    # a free rider sending (almost) nothing: norms (5, 5.1, 4.9, 5.05, 0.1), median 5,
    # MAD 0.1 -> z = 0.6745 * (0.1 - 5) / 0.1 (judged by its norm alone: no aggregate)
    clients = [[np.array(u)] for u in [(3, 4), (5.1, 0), (0, 4.9), (0, 5.05), (0.06, 0.08)]]
    small = round_signals([np.zeros(2)], clients, None)
    assert small.flagged == (4,) and small.norm_z[4] == pytest.approx(-0.6745 * 49)
    # equal norms; one update is the aggregate itself (cosine 1, +inf z): not suspicious
    aligned = _signals([(5, 0), (0, 5), (0, -5), (0, 5), (0, -5)], (1, 0))
    assert aligned.cosine_z[0] == np.inf and aligned.flagged == ()


def test_without_an_aggregate_cosines_are_nan_and_norms_still_count() -> None:
    start = [np.zeros(2)]
    clients = [[np.array(u)] for u in [(3, 4), (4, 3), (0, 6), (8, 0), (30, 40)]]
    s = round_signals(start, clients, None)
    assert np.isnan(s.cosines).all() and s.flagged == (4,)
    assert json.loads(json.dumps(client_records(s)[0])).keys() == {
        "update-norm", "cosine", "update-norm-z", "cosine-z",
    }  # fmt: skip


def test_a_vectors_cosine_with_itself_stays_within_one() -> None:
    # Prepare: a vector whose a·a / ‖a‖² rounds to 1.0000000000000002
    a = np.random.default_rng(4).normal(size=37)

    # Execute / Assert
    assert cosine_similarity(a, a) == 1.0
    assert cosine_similarity(a, -a) == -1.0


def test_a_round_too_small_to_judge_flags_only_a_non_finite_update() -> None:
    # norms (5, 5, 50): the 50 is z = 0.6745 * 45 / 0 -> +inf, yet three clients
    # give no steady median and MAD: nobody is flagged by score
    few = [[np.array(u)] for u in [(3, 4), (4, 3), (0, 50)]]
    assert not can_flag(len(few)) and can_flag(MIN_CLIENTS_TO_FLAG)
    assert round_signals([np.zeros(2)], few, None).flagged == ()
    broken = [*few[:2], [np.array([np.nan, 1.0])]]
    assert round_signals([np.zeros(2)], broken, None).flagged == (2,)
    # the same outlier among five clients is flagged
    five = [*few[:2], [np.array((5.0, 0.0))], [np.array((0.0, 5.0))], few[2]]
    assert round_signals([np.zeros(2)], five, None).flagged == (4,)
