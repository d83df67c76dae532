"""Statistics behind the book's claims, shared by the chapters.

Each function turns per-seed measurements (arrays whose axis 0 indexes seeds) into a
``claims.Estimate``: a value with an interval over seeds. Intervals are percentile
bootstraps over seeds (``claims.bootstrap_interval``, fixed ``rng_seed``, so a run is
deterministic) or Student-t intervals (``claims.t_interval``, ``scipy.stats``).
Paired quantities (conditions that share a seed) are resampled jointly: seed ``i`` of
every argument is drawn together.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import claims

__all__ = [
    "spearman_of_seed_means",
    "ratio_of_means",
    "difference_of_ratios",
    "first_last_means",
    "trend_slopes",
    "interval_gap",
    "spearman_per_seed",
]


def spearman_of_seed_means(samples: np.ndarray, doses: Sequence[float]) -> claims.Estimate:
    """Spearman ρ between ``doses`` ``(D,)`` and the seed-mean of ``samples`` ``(S, D)``.

    A dose-response statistic (e.g. §3.1, Fig. 1 left: the final fine-tuning loss
    against the pretraining offset ``b``). ρ is ``claims.spearman`` (exact rational
    arithmetic, so an exact 0.9 is not 0.8999...); the interval is a percentile
    bootstrap over seeds (rows of ``samples`` resampled).
    """
    doses = np.asarray(doses, np.float64)
    x = np.asarray(samples, np.float64)
    if x.ndim != 2 or x.shape[1] != doses.size:
        raise ValueError(f"samples must be (seeds, {doses.size}), got {x.shape}")
    return claims.bootstrap_interval(x, lambda s: claims.spearman(doses, s.mean(axis=0)))


def ratio_of_means(numerator: np.ndarray, denominator: np.ndarray) -> claims.Estimate:
    """``mean(numerator) / mean(denominator)`` over seeds, each ``(S,)``, with a paired
    percentile bootstrap (seed ``i`` of both arrays resampled together)."""
    pair = np.stack([np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)], 1)
    return claims.bootstrap_interval(pair, lambda s: s[:, 0].mean() / s[:, 1].mean())


def difference_of_ratios(num_a, den_a, num_b, den_b) -> claims.Estimate:
    """``mean(num_a) / mean(den_a) - mean(num_b) / mean(den_b)`` over seeds (each ``(S,)``),
    with a paired percentile bootstrap (seed ``i`` of all four resampled together)."""
    st = np.stack([np.asarray(v, np.float64) for v in (num_a, den_a, num_b, den_b)], axis=1)
    return claims.bootstrap_interval(
        st, lambda s: s[:, 0].mean() / s[:, 1].mean() - s[:, 2].mean() / s[:, 3].mean()
    )


def first_last_means(values: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed means over the first ``k`` and the last ``k`` tasks.

    ``values`` ``(S, T)`` (e.g. end-of-task accuracy, §4.1 / Fig. 4) ->
    ``(first (S,), last (S,))`` in float64; needs ``T >= k``. ``last - first`` is the
    per-seed trend that chapter 6's claims put a t-interval on.
    """
    x = np.asarray(values, np.float64)
    if x.ndim != 2 or x.shape[1] < k:
        raise ValueError(f"values must be (seeds, tasks >= k={k}), got shape {x.shape}")
    return x[:, :k].mean(1), x[:, -k:].mean(1)


def trend_slopes(values: np.ndarray) -> np.ndarray:
    """Least-squares slope of ``values`` ``(S, T)`` against the task index ``0..T-1``,
    per seed: ``(S,)`` (units of ``values`` per task; §4.2 / Fig. 5 left, "accuracy does
    not trend down"). The closed form ``sum_t (v_t - mean v)(t - mean t) / sum_t (t -
    mean t)^2`` of the ordinary least-squares fit; needs ``T >= 2``.
    """
    x = np.asarray(values, np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"values must be (seeds, tasks >= 2), got shape {x.shape}")
    t = np.arange(x.shape[1], dtype=np.float64)
    tc = t - t.mean()
    return ((x - x.mean(1, keepdims=True)) * tc).sum(1) / (tc**2).sum()


def interval_gap(a: claims.Estimate, b: claims.Estimate) -> float:
    """Lower end of interval ``a`` minus the upper end of interval ``b``.

    Positive exactly when ``a``'s interval lies entirely above ``b``'s (e.g. a single
    intervention clearly beating LN+L2, §4.1). Without intervals (one seed) the point
    values are used.
    """
    low = a.value if a.low is None else a.low
    high = b.value if b.high is None else b.high
    return float(low - high)


def spearman_per_seed(score: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Spearman rank correlation between ``score`` and ``target`` over the checkpoints of
    each seed: two ``(S, K)`` arrays -> ``(S,)`` float64 (``scipy.stats.spearmanr`` per
    row; NaN where either row is constant, since no ranking is defined there).

    Chapter 4 (§3.3, "the eNTK as a diagnostic tool"): does an eNTK pathology score rank
    a seed's checkpoints like the App. B.3 plasticity probe? The per-seed values then get
    a t-interval over seeds (``claims.t_interval``).
    """
    from scipy import stats as scipy_stats

    score, target = np.asarray(score), np.asarray(target)
    if score.shape != target.shape or score.ndim != 2:
        raise ValueError(
            f"score and target must be two (S, K) arrays of the same shape, "
            f"got {score.shape} and {target.shape}"
        )
    out = []
    for a, b in zip(score, target):
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            out.append(np.nan)
        else:
            out.append(scipy_stats.spearmanr(a, b).statistic)
    return np.asarray(out, dtype=np.float64)
