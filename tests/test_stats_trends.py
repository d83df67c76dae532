"""stats.first_last_means, stats.trend_slopes, stats.interval_gap (chapter 6's claim
statistics, §4.1 / Fig. 4 and §4.2 / Fig. 5 left), against hand-computed values and
numpy's least-squares fit."""

import numpy as np
import pytest

from plasticity_lib import claims, stats

ACC = np.array([[1.0, 1.0, 1.0, 0.9, 0.8, 0.7], [1.0, 0.9, 0.8, 0.7, 0.6, 0.5]])


def test_first_last_means_by_hand():
    first, last = stats.first_last_means(ACC)
    np.testing.assert_allclose(first, [1.0, 0.9])
    np.testing.assert_allclose(last, [0.8, 0.6])
    first, last = stats.first_last_means(ACC, k=1)
    np.testing.assert_array_equal(first, [1.0, 1.0])
    np.testing.assert_array_equal(last, [0.7, 0.5])
    assert first.dtype == np.float64
    with pytest.raises(ValueError, match="tasks >= k=3"):
        stats.first_last_means(np.ones((2, 2)))
    with pytest.raises(ValueError, match="seeds, tasks"):
        stats.first_last_means(np.ones(6))


def test_trend_slopes_equal_polyfit():
    np.testing.assert_allclose(stats.trend_slopes(ACC), np.polyfit(np.arange(6), ACC.T, 1)[0])
    # the second seed falls by exactly 0.1 per task; a constant has slope 0
    assert stats.trend_slopes(ACC)[1] == pytest.approx(-0.1)
    np.testing.assert_array_equal(stats.trend_slopes(np.ones((3, 5))), 0.0)
    rng = np.random.default_rng(1)
    v = rng.normal(size=(4, 9))
    np.testing.assert_allclose(
        stats.trend_slopes(v), np.polyfit(np.arange(9), v.T, 1)[0], rtol=1e-12, atol=1e-14
    )
    with pytest.raises(ValueError, match="tasks >= 2"):
        stats.trend_slopes(np.ones((3, 1)))


def test_interval_gap():
    a = claims.Estimate(5.0, 4.0, 6.0)
    b = claims.Estimate(2.0, 1.0, 3.0)
    assert stats.interval_gap(a, b) == pytest.approx(1.0)  # a's interval entirely above b's
    assert stats.interval_gap(b, a) == pytest.approx(-5.0)
    # one seed: no intervals, the point values are compared
    assert stats.interval_gap(claims.Estimate(2.0), claims.Estimate(0.5)) == pytest.approx(1.5)
    # with a t-interval from claims
    est = claims.t_interval([1.0, 2.0, 3.0])
    assert stats.interval_gap(est, b) == pytest.approx(est.low - 3.0)
