"""claims: intervals against scipy/NumPy, verdict logic, JSON records."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from plasticity_lib import claims
from plasticity_lib.profiles import Params


def test_t_interval_matches_hand_computation():
    x = np.array([1.0, 2.0, 4.0])
    e = claims.t_interval(x)
    half = stats.t.ppf(0.975, 2) * x.std(ddof=1) / np.sqrt(3)
    assert e.value == pytest.approx(7 / 3)
    assert e.low == pytest.approx(7 / 3 - half)
    assert e.high == pytest.approx(7 / 3 + half)
    assert e.n == 3


def test_t_interval_rejects_nonfinite_and_empty():
    with pytest.raises(ValueError, match="non-finite"):
        claims.t_interval([1.0, np.nan])
    with pytest.raises(ValueError, match="empty"):
        claims.t_interval([])


def test_bootstrap_is_deterministic_and_covers_the_statistic():
    rng = np.random.default_rng(1)
    samples = rng.normal(size=(8, 4)) + np.arange(4)
    stat = lambda s: claims.spearman(np.arange(4), s.mean(0))  # noqa: E731
    a = claims.bootstrap_interval(samples, stat)
    b = claims.bootstrap_interval(samples, stat)
    assert a == b
    assert a.low <= a.value <= a.high


@pytest.mark.parametrize(
    "low,high,direction,expected",
    [
        (0.1, 0.5, ">", "reproduced"),
        (-0.5, -0.1, ">", "not reproduced"),
        (-0.1, 0.5, ">", "inconclusive"),
        (-0.5, -0.1, "<", "reproduced"),
        (0.1, 0.5, "<=", "not reproduced"),
    ],
)
def test_verdict_from_interval(low, high, direction, expected):
    e = claims.Estimate((low + high) / 2, low, high, "t", 3)
    assert claims.verdict_for(e, 0.0, direction) == expected


def test_exact_values_and_nan():
    assert claims.verdict_for(claims.exact(1e-10), 1e-8, "<=") == "reproduced"
    assert claims.verdict_for(claims.exact(1e-6), 1e-8, "<=") == "not reproduced"
    assert claims.verdict_for(claims.exact(float("nan")), 0, ">") == "inconclusive"
    with pytest.raises(ValueError, match="direction"):
        claims.verdict_for(claims.exact(1.0), 0, "=>")


def test_combined_parts():
    assert claims.combine_verdicts(["reproduced", "reproduced"]) == "reproduced"
    assert claims.combine_verdicts(["reproduced", "inconclusive"]) == "inconclusive"
    assert claims.combine_verdicts(["inconclusive", "not reproduced"]) == "not reproduced"


def _params(profile):
    return Params("ch99_test", profile, {"seeds": 3}, {})


def test_claimbook_records_and_saves(tmp_path):
    book = claims.ClaimBook("ch99_test", _params("default"), dataset="mnist (tfds)")
    book.check("ch99.a", "A falls.", "Fig. 1", "drop", claims.t_interval([0.2, 0.3, 0.25]), 0.0, ">")
    book.check(
        "ch99.b",
        "B holds in two ways.",
        "Fig. 2",
        parts=[
            claims.part("rho", claims.exact(0.95), 0.9, ">="),
            claims.part("ratio", claims.t_interval([0.9, 1.2, 1.1]), 1.0, ">"),
        ],
    )
    assert [c.verdict for c in book.claims] == ["reproduced", "inconclusive"]
    df = book.table()
    assert list(df["claim"]) == ["ch99.a", "ch99.b", ""]
    path = book.save(tmp_path)
    rec = json.loads(path.read_text())
    assert rec["chapter"] == "ch99_test" and rec["seeds"] == 3 and rec["dataset"] == "mnist (tfds)"
    assert rec["claims"][1]["parts"][1]["estimate"]["n"] == 3
    assert claims.load_records(tmp_path)[0]["claims"][0]["id"] == "ch99.a"
    with pytest.raises(ValueError, match="twice"):
        book.check("ch99.a", "again", "Fig. 1", "drop", claims.exact(1), 0, ">")


def test_smoke_profile_is_not_evaluated():
    book = claims.ClaimBook("ch99_test", _params("smoke"))
    rec = book.check("ch99.a", "A falls.", "Fig. 1", "drop", claims.exact(1.0), 0.0, ">")
    assert rec.verdict == "not evaluated (smoke)"
    assert rec.parts[0].verdict == "reproduced"  # the condition is still computed


def test_spearman_constant_is_nan():
    assert np.isnan(claims.spearman([1, 2, 3], [5, 5, 5]))
    assert np.isnan(claims.spearman([4.0], [2.0]))  # n = 1: both sides constant
    assert np.isnan(claims.spearman([1, 2, np.nan], [1, 2, 3]))  # NaN propagates, as scipy
    assert claims.spearman([1, 2, 3], [1, 4, 9]) == pytest.approx(1.0)


def test_spearman_exact_without_ties():
    # 1 - 6 * sum d^2 / (n (n^2 - 1)) by hand, n = 5 (n (n^2 - 1) = 120):
    # d = (0, -1, 1, 0, 0): sum d^2 = 2 -> 1 - 12/120 = 0.9 exactly
    rho = claims.spearman([1, 2, 3, 4, 5], [1, 3, 2, 4, 5])
    assert rho == 0.9 and rho >= 0.9 and isinstance(rho, float)
    # d = (-4, -1, -1, 3, 3): sum d^2 = 36 -> 1 - 216/120 = -0.8 exactly
    rho = claims.spearman([1, 2, 3, 4, 5], [5, 3, 4, 1, 2])
    assert rho == -0.8 and rho <= -0.8
    # only the ranks matter (monotone transforms, float doses)
    assert claims.spearman([0.0, 0.1, 1.0, 10.0, 100.0], np.exp([1, 3, 2, 4, 5])) == 0.9
    assert claims.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    assert claims.spearman(range(7), np.arange(7) ** 3) == 1.0


def test_spearman_every_permutation_of_five_is_the_exact_rational():
    from fractions import Fraction
    from itertools import permutations

    x = np.arange(1, 6)
    for perm in permutations(range(1, 6)):
        d2 = sum((i - j) ** 2 for i, j in zip(x, perm))
        expected = float(Fraction(120 - 6 * d2, 120))  # a multiple of 0.1, correctly rounded
        assert claims.spearman(x, perm) == expected, (perm, d2)


def test_spearman_with_ties_by_hand():
    # x ranks (1, 2.5, 2.5, 4), y ranks (1, 2, 3, 4): centred (-1.5, 0, 0, 1.5) and
    # (-1.5, -.5, .5, 1.5): Sxy = 4.5, Sxx = 4.5, Syy = 5 -> rho = 4.5 / sqrt(22.5) = sqrt(0.9)
    rho = claims.spearman([1, 2, 2, 3], [1, 2, 3, 4])
    assert abs(rho - math.sqrt(0.9)) <= 1.2e-16
    # rational with ties: ranks (1.5,1.5,3.5,3.5,5.5,5.5) vs (1.5,1.5,5.5,5.5,3.5,3.5):
    # centred (-2,-2,0,0,2,2) and (-2,-2,2,2,0,0): Sxy = 8, Sxx = Syy = 16 -> 0.5 exactly
    assert claims.spearman([1, 1, 2, 2, 3, 3], [1, 1, 3, 3, 2, 2]) == 0.5
    assert claims.spearman([1, 1, 2, 2], [1, 1, 2, 2]) == 1.0
    assert claims.spearman([1, 1, 2, 2], [1, 2, 1, 2]) == 0.0


def test_spearman_matches_scipy_on_random_inputs():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(2, 30))
        x, y = rng.integers(0, 5, n), rng.normal(size=n)  # x has ties, y does not
        if np.ptp(x) == 0:
            continue
        assert claims.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-14)


@pytest.mark.parametrize(
    "x, y, word",
    [([1, 2, 3], [1, 2], "same length"), ([[1, 2], [3, 4]], [[1, 2], [3, 4]], "one-dimensional"), ([], [], "empty")],
)
def test_spearman_bad_inputs(x, y, word):
    with pytest.raises(ValueError, match=word):
        claims.spearman(x, y)
