"""``plasticity_lib.stats``: ratios of seed-means, their difference and the Spearman
dose-response, checked against hand-computed values, ``scipy.stats`` and an explicit
percentile bootstrap."""

import numpy as np
import pytest
from scipy import stats as scipy_stats

from plasticity_lib import claims, stats


def _explicit_bootstrap(samples, statistic, resamples=2000, seed=0, confidence=0.95):
    rng = np.random.default_rng(seed)
    n = samples.shape[0]
    values = np.array([statistic(samples[rng.integers(0, n, n)]) for _ in range(resamples)])
    return np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])


def test_ratio_of_means_value_and_paired_bootstrap():
    num = np.array([2.0, 4.0, 6.0, 9.0])
    den = np.array([1.0, 1.0, 2.0, 4.0])
    e = stats.ratio_of_means(num, den)
    assert e.value == pytest.approx(21.0 / 8.0)
    low, high = _explicit_bootstrap(
        np.stack([num, den], 1), lambda s: s[:, 0].mean() / s[:, 1].mean()
    )
    assert (e.low, e.high) == pytest.approx((low, high))
    assert e.low < e.value < e.high and e.n == 4
    # paired: numerator = 2 x denominator seed by seed, so every resample has ratio 2
    paired = stats.ratio_of_means(2.0 * den, den)
    assert paired.value == pytest.approx(2.0)
    assert paired.low == pytest.approx(2.0) and paired.high == pytest.approx(2.0)


def test_difference_of_ratios():
    rng = np.random.default_rng(0)
    a_num, a_den, b_num, b_den = (1.0 + rng.random(6) for _ in range(4))
    e = stats.difference_of_ratios(a_num, a_den, b_num, b_den)
    assert e.value == pytest.approx(a_num.mean() / a_den.mean() - b_num.mean() / b_den.mean())
    assert e.low <= e.value <= e.high
    # the same ratio twice: the difference is 0 in every resample
    same = stats.difference_of_ratios(a_num, a_den, a_num, a_den)
    assert same.value == 0.0 and same.low == 0.0 and same.high == 0.0


def test_spearman_of_seed_means():
    rng = np.random.default_rng(0)
    doses = [0, 8, 16, 32]
    losses = np.array([1.0, 2.0, 4.0, 8.0]) * (1 + 0.05 * rng.normal(size=(5, 4)))
    e = stats.spearman_of_seed_means(losses, doses)
    assert e.value == pytest.approx(1.0) and e.low is not None and e.low >= 0.8
    noisy = rng.normal(size=(5, 4))
    ref = scipy_stats.spearmanr(doses, noisy.mean(0)).statistic
    assert stats.spearman_of_seed_means(noisy, doses).value == pytest.approx(ref, abs=1e-12)
    # one adjacent swap among 5 doses is exactly 0.9 (scipy: 0.8999999999999998)
    swapped = np.array([[1.0, 3.0, 2.0, 4.0, 5.0]])
    assert stats.spearman_of_seed_means(swapped, [0, 8, 16, 32, 64]).value == 0.9
    with pytest.raises(ValueError, match="samples"):
        stats.spearman_of_seed_means(losses[:, :3], doses)


def test_verdicts_follow_from_the_intervals():
    den = np.array([1.0, 1.1, 0.9, 1.0])
    e = stats.ratio_of_means(3.0 * den + np.array([0.0, 0.1, -0.1, 0.05]), den)
    assert claims.verdict_for(e, 1.0, ">") == "reproduced"
    assert claims.verdict_for(e, 1.5, "<") == "not reproduced"
