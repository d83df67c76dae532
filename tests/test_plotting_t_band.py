"""``plotting.t_band``: the seed band of the book's figures is the Student-t interval."""

import math

import numpy as np

from plasticity_lib import plotting


def test_t_band_by_hand():
    # mean 2, sample sd 1, n = 3: half width t_{p, 2} / sqrt(3). With 2 degrees of freedom
    # the t quantile has a closed form, t_{p, 2} = (2p - 1) sqrt(2 / (4 p (1 - p))).
    def t2(p):
        return (2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p)))

    low, high = plotting.t_band([1.0, 2.0, 3.0])
    half = t2(0.975) / math.sqrt(3)  # t_{0.975, 2} = 4.3027
    np.testing.assert_allclose([low, high], [2 - half, 2 + half], rtol=1e-10)
    low, high = plotting.t_band([1.0, 2.0, 3.0], confidence=0.9)
    np.testing.assert_allclose(high - 2, t2(0.95) / math.sqrt(3), rtol=1e-10)


def test_t_band_degenerate_inputs():
    assert plotting.t_band([4.0]) == (4.0, 4.0)  # one seed: no band
    assert plotting.t_band([4.0, np.nan]) == (4.0, 4.0)  # non-finite values are left out
    low, high = plotting.t_band([np.inf, 1.0, 2.0, 3.0])
    assert low < 2 < high
    assert all(math.isnan(v) for v in plotting.t_band([np.nan]))
