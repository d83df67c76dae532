"""``stats.spearman_per_seed`` against rank correlations computed by hand."""

import numpy as np
import pytest

from plasticity_lib import stats


def _spearman_by_hand(a, b):
    """Pearson correlation of the ranks (no ties in these cases)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / np.sqrt((ra**2).sum() * (rb**2).sum()))


def test_spearman_per_seed_by_hand():
    a = np.array([[1.0, 2, 3, 4], [1, 2, 3, 4], [1, 1, 1, 1], [0.3, 0.1, 0.4, 0.2]])
    b = np.array([[2.0, 4, 6, 8], [4, 3, 2, 1], [1, 2, 3, 4], [5.0, 6, 8, 7]])
    r = stats.spearman_per_seed(a, b)
    assert r.dtype == np.float64 and r.shape == (4,)
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(-1.0)
    assert np.isnan(r[2])  # a constant row has no ranking
    # ranks (2, 0, 3, 1) vs (0, 1, 3, 2): 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6*6/60
    assert r[3] == pytest.approx(0.4) and r[3] == pytest.approx(_spearman_by_hand(a[3], b[3]))


def test_spearman_per_seed_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        stats.spearman_per_seed(np.zeros((2, 4)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="same shape"):
        stats.spearman_per_seed(np.zeros(4), np.zeros(4))
