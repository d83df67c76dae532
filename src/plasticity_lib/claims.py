"""Claim records: the paper's statements, tested against measured statistics.

A *claim* is one statement of the paper (with its section / figure) turned into a
test: a statistic, a threshold and a direction, all fixed before the run (in the
chapter's issue), the measured value with a 95 % interval over seeds, and a verdict
derived from the interval:

* ``reproduced``      the whole interval lies on the claimed side of the threshold;
* ``not reproduced``  the whole interval lies on the other side;
* ``inconclusive``    the interval straddles the threshold;
* ``uninformative``   the test could not have failed (rules below), with a reason.

A value without an interval (a deterministic computation, e.g. a closed-form check
in float64) is compared directly. At the ``smoke`` profile every verdict reads
``not evaluated (smoke)``: the smoke run checks that the code runs, not the claim.
A run on the digits fallback (``allow_fallback=True``; the dataset's ``source`` says
``fallback``) at another profile reads ``not evaluated (fallback data)``: 8x8 digits
cannot test the paper's claims.

Sized statements (bands)
------------------------
Where the paper states a size ("roughly halves", "similar but less extreme"),
:func:`band` tests ``low <= statistic <= high`` two-sided: reproduced when the whole
interval lies inside ``[low, high]``, not reproduced when it lies entirely outside,
inconclusive otherwise.

When a test could not have failed (``uninformative``)
------------------------------------------------------
The rules are decided here, not by hand in the chapters (issue 14, issue 21 defect 4):

* **ceiling / floor** (:class:`Bound`, on a part): the part declares the bound of its
  statistic's inputs (accuracy 1.0, the loss of the constant predictor, ...), a
  tolerance and the per-seed values of every compared arm. When every finite value of
  every arm lies within the tolerance of the bound (``x >= value - tolerance`` for a
  ceiling, ``x <= value + tolerance`` for a floor), the part is uninformative, whatever
  its interval says (reason ``"all arms at the ceiling"`` / ``"floor"``).
* **no loss to prevent** (``baseline_loses=``, on a part or a claim): a claim that an
  intervention keeps plasticity names the part or claim of the same run that shows the
  baseline losing it; unless that one is *reproduced*, the claim is uninformative
  (reason ``"the baseline did not lose plasticity on this stream"``).
* **chance level** (:class:`FirstTask`, on a part or a claim): a "keeps plasticity"
  claim declares the chance accuracy and the per-seed accuracy reached on the first
  task; unless every seed learned the first task well above chance (accuracy
  ``>= chance + margin``, by default half-way from chance to 1), it is uninformative
  (reason ``"the first task was not learned well above chance"``).

The two guards (no loss, chance level) turn ``reproduced`` and ``inconclusive`` into
``uninformative`` but leave ``not reproduced`` alone: an intervention that lost
plasticity failed its test, which is informative. A claim made of several conditions
(``parts``) is *not reproduced* when any part is; else *uninformative* when any part
is (or a claim-level guard fires); else *reproduced* when every part is; else
*inconclusive*. Claims that use none of these options get exactly the verdicts and
records they got before the rules existed.

Diverged seeds
--------------
``t_interval(values, drop_nonfinite=True)`` and ``bootstrap_interval(...,
drop_nonfinite=True)`` drop the seeds whose values are not finite (NaN/inf: diverged
runs) and count them in ``Estimate.dropped`` (stored in the record); with fewer than
2 finite seeds left the part is ``inconclusive`` (reason says how many were dropped),
unless an informativeness rule fires (a bound, no loss to prevent, chance level): that
rule says no data could decide, so the part is ``uninformative`` with both reasons.
A non-finite value that is not a diverged run (a per-seed correlation of a series that
stays constant is NaN) is named by ``dropped_as=...``, so the record does not call it
"diverged".
:func:`finite_seeds` finds the seeds that are finite in several arrays at once (paired
arms), and ``ClaimBook.note_diverged(arm, flags)`` records per-arm counts of the
engine's divergence flags.

Intervals
---------
``t_interval(values)``     mean of per-seed values with a Student-t 95 % interval.
``bootstrap_interval(samples, statistic)``  any statistic of per-seed samples
(a Spearman correlation of seed-means, a ratio of means ...), with a percentile
bootstrap over seeds (resampling whole seeds, 2000 resamples, fixed generator seed,
so the interval is deterministic).

Usage in a chapter::

    book = ClaimBook("ch00_overview", P, dataset=data.source)
    book.check("ch0.baseline_falls", statement="...", figure="Fig. 5 (left)",
               statistic="first-3 minus last-3 end-of-task accuracy, baseline",
               estimate=t_interval(per_seed_drop, drop_nonfinite=True),
               threshold=0.0, direction=">")
    book.check("ch0.ln_l2_keeps", statement="...", figure="Fig. 4",
               statistic="last-3 minus first-3, LN+L2",
               estimate=t_interval(per_seed_change, drop_nonfinite=True),
               threshold=-0.02, direction=">",
               bound=Bound(1.0, 0.005, {"LN+L2": acc_ln_last3}),
               baseline_loses="ch0.baseline_falls",
               first_task=FirstTask(acc_ln[:, 0], chance=0.1))
    book.table()        # a pandas DataFrame (displayed in the notebook, with anchors)
    book.save()         # JSON next to the executed notebook

The records are gathered by ``plasticity-book build`` into the scorecard page.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import html as _html
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np

from . import timing

NOT_EVALUATED_SMOKE = "not evaluated (smoke)"
NOT_EVALUATED_FALLBACK = "not evaluated (fallback data)"
VERDICTS = (
    "reproduced",
    "not reproduced",
    "inconclusive",
    "uninformative",
    NOT_EVALUATED_SMOKE,
    NOT_EVALUATED_FALLBACK,
)
KINDS = ("paper", "derivation", "extension")
DIRECTIONS = (">", ">=", "<", "<=")
BAND = "in"  # the direction of a band part: low <= statistic <= high
SIDES = ("ceiling", "floor")
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000

REASON_CEILING = "all arms at the ceiling"
REASON_FLOOR = "all arms at the floor"
REASON_NO_LOSS = "the baseline did not lose plasticity on this stream"
REASON_CHANCE = "the first task was not learned well above chance"
REASON_TOO_FEW = "fewer than 2 finite seeds"


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A measured value with its interval (``low``/``high`` are None when exact).

    ``dropped`` is the number of non-finite (diverged) seeds left out of the estimate
    when it was built with ``drop_nonfinite=True`` (None otherwise; then it is not
    stored in the record). ``dropped_as`` says what a non-finite seed value means when
    it is not a diverged run (e.g. ``"constant series: correlation undefined"``); None
    means "diverged" and is not stored.
    """

    value: float
    low: float | None = None
    high: float | None = None
    method: str = "exact"
    n: int = 1
    dropped: int | None = None
    dropped_as: str | None = None

    @property
    def too_few_seeds(self) -> bool:
        """Seeds were dropped as non-finite and fewer than 2 remain: no verdict."""
        return bool(self.dropped) and self.n < 2

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.dropped is None:
            del d["dropped"]
        if self.dropped_as is None:
            del d["dropped_as"]
        return d


def _finite_rows(x: np.ndarray) -> np.ndarray:
    """``(S,)`` bool: rows (seeds, axis 0) of ``x`` whose every entry is finite."""
    x = np.asarray(x, dtype=np.float64)
    return np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)


def finite_seeds(*arrays: Sequence[float] | np.ndarray) -> tuple[np.ndarray, int]:
    """Which seeds are finite in *every* array (paired arms of one run).

    Args:
      arrays: arrays whose axis 0 indexes the same ``S`` seeds, e.g. ``(S,)`` or
        ``(S, tasks)`` accuracies of two arms.
    Returns:
      ``(keep, dropped)``: ``keep`` ``(S,)`` bool (True where every entry of every array
      for that seed is finite) and ``dropped = S - keep.sum()``. Use
      ``a[keep]`` and pass ``dropped`` on, or build the estimate with
      ``drop_nonfinite=True``.
    """
    if not arrays:
        raise ValueError("finite_seeds: give at least one array")
    shapes = [np.shape(a) for a in arrays]
    if any(len(s) == 0 for s in shapes) or len({s[0] for s in shapes}) != 1:
        raise ValueError(
            f"finite_seeds: every array needs the same leading seed axis, got {shapes}"
        )
    keep = np.logical_and.reduce([_finite_rows(a) for a in arrays])
    return keep, int(keep.size - keep.sum())


def t_interval(
    values: Sequence[float] | np.ndarray,
    confidence: float = CONFIDENCE,
    *,
    drop_nonfinite: bool = False,
    dropped_as: str | None = None,
) -> Estimate:
    """Mean of per-seed ``values`` (shape (n_seeds,)) with a Student-t interval.

    With one seed the interval is undefined (``low = high = None``) and the method
    says so. Non-finite values (diverged seeds) raise, unless ``drop_nonfinite``: then
    they are dropped and counted in ``Estimate.dropped``; with fewer than 2 finite
    seeds left the estimate has no interval and any part built on it is
    ``inconclusive``. ``dropped_as`` names what a non-finite value means when it is not
    a diverged run (a per-seed correlation of a constant series is NaN:
    ``dropped_as="constant series: correlation undefined"``); reasons and the method
    then say that instead of "diverged".
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("t_interval: `values` is empty; need at least one per-seed value")
    _check_dropped_as(dropped_as, drop_nonfinite, "t_interval")
    dropped = None
    if drop_nonfinite:
        finite = np.isfinite(x)
        dropped, x = int(x.size - finite.sum()), x[finite]
        if x.size < 2 and dropped:
            value = float(x.mean()) if x.size else float("nan")
            return Estimate(
                value,
                None,
                None,
                f"{x.size} finite seed(s), {_dropped_words(dropped, dropped_as)}",
                int(x.size),
                dropped,
                dropped_as if dropped else None,
            )
    elif not np.all(np.isfinite(x)):
        raise ValueError(
            f"t_interval: `values` contains non-finite entries: {x} "
            "(pass drop_nonfinite=True to drop diverged seeds)"
        )
    as_ = dropped_as if dropped else None
    mean = float(x.mean())
    if x.size == 1:
        return Estimate(mean, None, None, "single seed (no interval)", 1, dropped, as_)
    sem = float(x.std(ddof=1) / math.sqrt(x.size))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=x.size - 1)) * sem
    method = f"t-interval over {x.size} seeds" + (
        f" ({_dropped_words(dropped, dropped_as)})" if dropped else ""
    )
    return Estimate(mean, mean - half, mean + half, method, int(x.size), dropped, as_)


def _check_dropped_as(dropped_as: Any, drop_nonfinite: bool, fn: str) -> None:
    if dropped_as is None:
        return
    if not isinstance(dropped_as, str) or not dropped_as.strip():
        raise ValueError(f"{fn}: dropped_as must be a non-empty str or None, got {dropped_as!r}")
    if not drop_nonfinite:
        raise ValueError(f"{fn}: dropped_as={dropped_as!r} needs drop_nonfinite=True")


def _dropped_words(dropped: int, dropped_as: str | None) -> str:
    """``"2 dropped"`` (diverged seeds, the old wording) or ``"2 dropped: <why>"``."""
    return f"{dropped} dropped" + (f": {dropped_as}" if dropped_as else "")


def bootstrap_interval(
    samples: np.ndarray,
    statistic: Callable[[np.ndarray], float],
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    rng_seed: int = 0,
    *,
    drop_nonfinite: bool = False,
    dropped_as: str | None = None,
) -> Estimate:
    """Percentile bootstrap over seeds for an arbitrary statistic.

    Args:
      samples: array whose axis 0 indexes seeds, e.g. (n_seeds, n_conditions).
      statistic: maps an array shaped like ``samples`` (seeds resampled with
        replacement along axis 0) to a float.
      drop_nonfinite: drop the seeds (rows) with any non-finite entry first and count
        them in ``Estimate.dropped``; fewer than 2 left gives an estimate without an
        interval whose parts are ``inconclusive``.
      dropped_as: what a non-finite row means when it is not a diverged run (see
        :func:`t_interval`).
    Returns:
      ``Estimate(statistic(samples), low, high)``. Resamples whose statistic is not
      finite (e.g. a correlation of constant values) are dropped; if more than half
      are, the interval is reported as undefined.
    """
    x = np.asarray(samples)
    if x.ndim == 0 or x.shape[0] < 1:
        raise ValueError("bootstrap_interval: `samples` has no seeds along axis 0")
    _check_dropped_as(dropped_as, drop_nonfinite, "bootstrap_interval")
    dropped = None
    if drop_nonfinite:
        keep = _finite_rows(x)
        dropped, x = int(keep.size - keep.sum()), x[keep]
        if x.shape[0] < 2 and dropped:
            value = float(statistic(x)) if x.shape[0] else float("nan")
            n_left = int(x.shape[0])
            words = _dropped_words(dropped, dropped_as)
            return Estimate(
                value, None, None, f"{n_left} finite seed(s), {words}", n_left, dropped, dropped_as
            )
    as_ = dropped_as if dropped else None
    value = float(statistic(x))
    n = x.shape[0]
    if n == 1:
        return Estimate(value, None, None, "single seed (no interval)", 1, dropped, as_)
    rng = np.random.default_rng(rng_seed)
    stats_ = np.array(
        [statistic(x[rng.integers(0, n, n)]) for _ in range(resamples)], dtype=np.float64
    )
    stats_ = stats_[np.isfinite(stats_)]
    if stats_.size < resamples / 2:
        return Estimate(value, None, None, f"bootstrap over {n} seeds (undefined)", n, dropped, as_)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats_, [alpha, 1 - alpha])
    method = f"bootstrap over {n} seeds" + (
        f" ({_dropped_words(dropped, dropped_as)})" if dropped else ""
    )
    return Estimate(value, float(low), float(high), method, n, dropped, as_)


def exact(value: float) -> Estimate:
    """A value with no sampling uncertainty (deterministic computation)."""
    return Estimate(float(value), None, None, "exact", 1)


def _holds(x: float, threshold: float, direction: str) -> bool:
    return {">": x > threshold, ">=": x >= threshold, "<": x < threshold, "<=": x <= threshold}[
        direction
    ]


def verdict_for(estimate: Estimate, threshold: float, direction: str) -> str:
    """Verdict of one condition ``statistic <direction> threshold`` from its interval.

    Without an interval the point value decides. A non-finite value, or an estimate
    left with fewer than 2 finite seeds after dropping diverged ones, is
    ``inconclusive`` (it cannot be compared), never silently a pass.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if not math.isfinite(estimate.value) or estimate.too_few_seeds:
        return "inconclusive"
    if estimate.low is None or estimate.high is None:
        return "reproduced" if _holds(estimate.value, threshold, direction) else "not reproduced"
    lo_ok = _holds(estimate.low, threshold, direction)
    hi_ok = _holds(estimate.high, threshold, direction)
    if lo_ok and hi_ok:
        return "reproduced"
    if not lo_ok and not hi_ok:
        return "not reproduced"
    return "inconclusive"


def band_verdict(estimate: Estimate, low: float, high: float) -> str:
    """Verdict of a two-sided condition ``low <= statistic <= high`` (a sized statement).

    ``reproduced`` when the interval ``[estimate.low, estimate.high]`` lies inside
    ``[low, high]``; ``not reproduced`` when it lies entirely outside (above ``high`` or
    below ``low``); ``inconclusive`` otherwise. Without an interval the point value
    decides; a non-finite value (or too few finite seeds) is ``inconclusive``.
    """
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"band: need finite low <= high, got low={low!r}, high={high!r}")
    if not math.isfinite(estimate.value) or estimate.too_few_seeds:
        return "inconclusive"
    if estimate.low is None or estimate.high is None:
        return "reproduced" if low <= estimate.value <= high else "not reproduced"
    if low <= estimate.low and estimate.high <= high:
        return "reproduced"
    if estimate.high < low or estimate.low > high:
        return "not reproduced"
    return "inconclusive"


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """Any not reproduced -> not reproduced; else any uninformative -> uninformative;
    else all reproduced -> reproduced; else inconclusive."""
    if any(v == "not reproduced" for v in verdicts):
        return "not reproduced"
    if any(v == "uninformative" for v in verdicts):
        return "uninformative"
    if all(v == "reproduced" for v in verdicts):
        return "reproduced"
    return "inconclusive"


# ------------------------------------------------------------------ informativeness


def _per_seed(values: Any, what: str) -> tuple[float, ...]:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError(f"{what}: needs at least one per-seed value, got an empty array")
    return tuple(float(v) for v in x)


@dataclasses.dataclass(frozen=True)
class Bound:
    """The bound of a statistic's inputs, for the ceiling/floor rule.

    Attributes:
      value: the bound (accuracy 1.0; the loss of the constant predictor; 0 for a loss
        that cannot go lower ...).
      tolerance: an arm value within ``tolerance`` of ``value`` counts as at the bound
        (e.g. 0.005 for "accuracy >= 99.5 %").
      arms: ``{arm name: per-seed values (S,)}`` of every arm the statistic compares,
        in the units of ``value`` (e.g. the end-of-task accuracies that enter it, one
        per seed; several numbers per seed may be flattened in).
      side: ``"ceiling"`` (at the bound means ``x >= value - tolerance``) or
        ``"floor"`` (``x <= value + tolerance``).

    The part is uninformative when every finite value of every arm is at the bound
    (non-finite values are diverged seeds, dropped; an arm with none finite is not at
    the bound).
    """

    value: float
    tolerance: float
    arms: Mapping[str, Any]
    side: str = "ceiling"

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"Bound: side={self.side!r} is not allowed; allowed: {list(SIDES)}")
        if not math.isfinite(float(self.value)):
            raise ValueError(f"Bound: value={self.value!r} must be a finite number")
        if not (math.isfinite(float(self.tolerance)) and float(self.tolerance) >= 0):
            raise ValueError(f"Bound: tolerance={self.tolerance!r} must be a finite number >= 0")
        if not isinstance(self.arms, Mapping) or not self.arms:
            raise ValueError(
                "Bound: arms must be a non-empty mapping {arm name: per-seed values}, "
                f"got {self.arms!r}"
            )
        arms = {str(k): _per_seed(v, f"Bound: arm {k!r}") for k, v in self.arms.items()}
        object.__setattr__(self, "arms", arms)
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "tolerance", float(self.tolerance))

    def _at(self, x: float) -> bool:
        if self.side == "ceiling":
            return x >= self.value - self.tolerance
        return x <= self.value + self.tolerance

    @property
    def at_bound(self) -> bool:
        """Every finite value of every arm within the tolerance of the bound."""
        for vals in self.arms.values():
            finite = [v for v in vals if math.isfinite(v)]
            if not finite or not all(self._at(v) for v in finite):
                return False
        return True

    def reason(self) -> str:
        head = REASON_CEILING if self.side == "ceiling" else REASON_FLOOR
        rel = ">=" if self.side == "ceiling" else "<="
        lim = self.value - self.tolerance if self.side == "ceiling" else self.value + self.tolerance
        return f"{head} ({', '.join(self.arms)}: every seed {rel} {_fmt(lim)})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "tolerance": self.tolerance,
            "side": self.side,
            "arms": {k: list(v) for k, v in self.arms.items()},
        }


@dataclasses.dataclass(frozen=True)
class FirstTask:
    """The chance-level guard of a "keeps plasticity" claim (issue 21, defect 4).

    Attributes:
      accuracy: per-seed accuracy reached on the first task, ``(S,)``, or
        ``{arm name: (S,)}`` for several arms (each must pass).
      chance: the accuracy of guessing (``1 / num_classes`` for uniform labels).
      margin: how far above chance counts as "well above": every finite seed needs
        ``accuracy >= chance + margin``. Default: half the way from chance to 1,
        ``(1 - chance) / 2`` (0.55 for 10 classes).
    """

    accuracy: Any
    chance: float
    margin: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(float(self.chance)) and 0 <= float(self.chance) < 1):
            raise ValueError(f"FirstTask: chance={self.chance!r} must be in [0, 1)")
        margin = (1 - float(self.chance)) / 2 if self.margin is None else float(self.margin)
        if not (math.isfinite(margin) and margin > 0):
            raise ValueError(f"FirstTask: margin={self.margin!r} must be a finite number > 0")
        acc = self.accuracy if isinstance(self.accuracy, Mapping) else {"": self.accuracy}
        if not acc:
            raise ValueError("FirstTask: accuracy is an empty mapping; give per-seed values")
        acc = {str(k): _per_seed(v, f"FirstTask: accuracy {k!r}") for k, v in acc.items()}
        object.__setattr__(self, "accuracy", acc)
        object.__setattr__(self, "chance", float(self.chance))
        object.__setattr__(self, "margin", margin)

    @property
    def required(self) -> float:
        return self.chance + self.margin

    @property
    def learned(self) -> bool:
        """Every finite seed of every arm reached ``chance + margin`` on the first task."""
        for vals in self.accuracy.values():
            finite = [v for v in vals if math.isfinite(v)]
            if not finite or min(finite) < self.required:
                return False
        return True

    def reason(self) -> str:
        finite = [v for vals in self.accuracy.values() for v in vals if math.isfinite(v)]
        lowest = _fmt(min(finite)) if finite else "none finite"
        return (
            f"{REASON_CHANCE} (needs >= {_fmt(self.required)} on every seed, chance "
            f"{_fmt(self.chance)}; lowest {lowest})"
        )

    def as_dict(self) -> dict[str, Any]:
        acc = {k: list(v) for k, v in self.accuracy.items()}
        return {
            "chance": self.chance,
            "margin": self.margin,
            "required": self.required,
            "accuracy": acc[""] if list(acc) == [""] else acc,
        }


@dataclasses.dataclass(frozen=True)
class Part:
    """One condition of a claim: ``statistic <direction> threshold``, or a band
    ``threshold <= statistic <= threshold_high`` (``direction == "in"``).

    ``verdict`` is the part's verdict after the informativeness rules;
    ``interval_verdict`` is what the interval alone said, kept when a rule changed it;
    ``reason`` says which rule (or why no verdict could be given)."""

    statistic: str
    estimate: Estimate
    threshold: float
    direction: str
    verdict: str
    threshold_high: float | None = None
    reason: str = ""
    interval_verdict: str | None = None
    bound: Bound | None = None
    first_task: FirstTask | None = None
    baseline: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "statistic": self.statistic,
            "estimate": self.estimate.as_dict(),
            "threshold": self.threshold,
            "direction": self.direction,
            "verdict": self.verdict,
        }
        if self.threshold_high is not None:
            d["threshold_high"] = self.threshold_high
        if self.reason:
            d["reason"] = self.reason
        if self.interval_verdict is not None:
            d["interval_verdict"] = self.interval_verdict
        if self.bound is not None:
            d["bound"] = self.bound.as_dict()
        if self.first_task is not None:
            d["first_task"] = self.first_task.as_dict()
        if self.baseline:
            d["baseline_loses"] = list(self.baseline)
        return d


Baseline = Union[str, "ClaimRecord", Part]


def _check_estimate(statistic: str, estimate: Any, fn: str) -> None:
    if not isinstance(estimate, Estimate):
        raise TypeError(
            f"{fn}({statistic!r}): `estimate` must be an Estimate (use t_interval, "
            f"bootstrap_interval or exact), got {type(estimate).__name__}"
        )


def _too_few_reason(e: Estimate) -> str:
    if e.dropped_as:
        return f"{REASON_TOO_FEW} ({e.dropped} seed(s) dropped: {e.dropped_as}; {e.n} left)"
    return f"{REASON_TOO_FEW} ({e.dropped} diverged seed(s) dropped, {e.n} left)"


def _guard(
    verdict: str,
    reasons: list[str],
    baseline_verdicts: Sequence[tuple[str, str]],
    first_task: FirstTask | None,
) -> str:
    """Apply the two guards (no loss to prevent, chance level) to a verdict."""
    fired = []
    for name, v in baseline_verdicts:
        if v != "reproduced":
            fired.append(f"{REASON_NO_LOSS} ({name}: {v})")
    if first_task is not None and not first_task.learned:
        fired.append(first_task.reason())
    if not fired:
        return verdict
    if verdict == "not reproduced":  # a failed "keeps plasticity" test is informative
        return verdict
    reasons.extend(fired)
    return "uninformative"


def _baseline_outcome(ref: Any, book: "ClaimBook | None" = None) -> tuple[str, str]:
    """``(name, verdict)`` of a ``baseline_loses`` reference (its evaluated verdict,
    also at the smoke profile)."""
    if isinstance(ref, Part):
        return f"part {ref.statistic!r}", ref.verdict
    if isinstance(ref, ClaimRecord):
        return ref.id, ref.evaluated_verdict or ref.verdict
    if isinstance(ref, str):
        if book is None:
            raise ValueError(
                f"baseline_loses={ref!r}: a claim id can only be given to ClaimBook.check; "
                "pass the Part or ClaimRecord to part()"
            )
        for c in book.claims:
            if c.id == ref:
                return c.id, c.evaluated_verdict or c.verdict
        raise ValueError(
            f"baseline_loses={ref!r} is not a claim recorded earlier in this chapter; "
            f"recorded: {[c.id for c in book.claims]}"
        )
    raise TypeError(
        "baseline_loses must be a claim id (str), a ClaimRecord or a Part, "
        f"or a sequence of them; got {type(ref).__name__}"
    )


def _baseline_list(baseline_loses: Any) -> list[Any]:
    if baseline_loses is None:
        return []
    if isinstance(baseline_loses, (str, Part, ClaimRecord)):
        return [baseline_loses]
    return list(baseline_loses)


def _make_part(
    statistic: str,
    estimate: Estimate,
    threshold: float,
    direction: str,
    interval_verdict: str,
    threshold_high: float | None,
    bound: Bound | None,
    baseline_loses: Any,
    first_task: FirstTask | None,
    book: "ClaimBook | None" = None,
) -> Part:
    if bound is not None and not isinstance(bound, Bound):
        raise TypeError(f"part({statistic!r}): bound must be a claims.Bound, got {bound!r}")
    if first_task is not None and not isinstance(first_task, FirstTask):
        raise TypeError(
            f"part({statistic!r}): first_task must be a claims.FirstTask, got {first_task!r}"
        )
    baselines = [_baseline_outcome(b, book) for b in _baseline_list(baseline_loses)]
    reasons: list[str] = []
    verdict = interval_verdict
    if estimate.too_few_seeds:  # inconclusive, unless a guard says no data could decide
        reasons.append(_too_few_reason(estimate))
    if bound is not None and bound.at_bound:
        verdict = "uninformative"
        reasons.append(bound.reason())
    verdict = _guard(verdict, reasons, baselines, first_task)
    return Part(
        statistic,
        estimate,
        float(threshold),
        direction,
        verdict,
        threshold_high=threshold_high,
        reason="; ".join(reasons),
        interval_verdict=interval_verdict if verdict != interval_verdict else None,
        bound=bound,
        first_task=first_task,
        baseline=tuple(name for name, _ in baselines),
    )


def part(
    statistic: str,
    estimate: Estimate,
    threshold: float,
    direction: str,
    *,
    bound: Bound | None = None,
    baseline_loses: Part | "ClaimRecord" | Sequence[Any] | None = None,
    first_task: FirstTask | None = None,
) -> Part:
    """Build a condition ``statistic <direction> threshold`` and derive its verdict.

    Optional informativeness rules (module docstring): ``bound`` (ceiling/floor),
    ``baseline_loses`` (the Part or ClaimRecord showing that the baseline lost
    plasticity on the same stream; a sequence: all of them), ``first_task`` (chance
    level).
    """
    _check_estimate(statistic, estimate, "part")
    v = verdict_for(estimate, float(threshold), direction)
    return _make_part(
        statistic, estimate, threshold, direction, v, None, bound, baseline_loses, first_task
    )


def band(
    statistic: str,
    estimate: Estimate,
    low: float,
    high: float,
    *,
    bound: Bound | None = None,
    baseline_loses: Part | "ClaimRecord" | Sequence[Any] | None = None,
    first_task: FirstTask | None = None,
) -> Part:
    """A two-sided condition ``low <= statistic <= high`` for a sized statement
    ("roughly halves": e.g. a ratio in ``[0.35, 0.65]``), see :func:`band_verdict`.
    Same optional rules as :func:`part`."""
    _check_estimate(statistic, estimate, "band")
    low, high = float(low), float(high)
    v = band_verdict(estimate, low, high)
    return _make_part(statistic, estimate, low, BAND, v, high, bound, baseline_loses, first_task)


def _fmt(x: float | None) -> str:
    if x is None:
        return "–"
    if x == 0 or (1e-3 <= abs(x) < 1e4):
        return f"{x:.3g}"
    return f"{x:.2e}"


def format_estimate(e: Estimate) -> str:
    if e.low is None or e.high is None:
        return _fmt(e.value)
    return f"{_fmt(e.value)} [{_fmt(e.low)}, {_fmt(e.high)}]"


def format_threshold(direction: str, threshold: float, threshold_high: float | None = None) -> str:
    """``"> 0.1"``, or ``"in [0.35, 0.65]"`` for a band."""
    if direction == BAND:
        return f"in [{_fmt(threshold)}, {_fmt(threshold_high)}]"
    return f"{direction} {_fmt(threshold)}"


def claim_anchor(claim_id: str) -> str:
    """The HTML id of a claim's row in its chapter's claim table (``claim-ch0-a_b``);
    the scorecard links to ``<chapter>.html#<anchor>``."""
    return "claim-" + re.sub(r"[^A-Za-z0-9_-]", "-", claim_id)


@dataclasses.dataclass
class ClaimRecord:
    """A claim as stored in the JSON record and shown on the scorecard.

    ``evaluated_verdict`` is the verdict the rules give (also at the smoke profile,
    where ``verdict`` reads "not evaluated (smoke)"); not stored in the record."""

    id: str
    statement: str
    figure: str
    parts: list[Part]
    verdict: str
    note: str = ""
    kind: str = "paper"
    reason: str = ""
    evaluated_verdict: str | None = dataclasses.field(default=None, repr=False)
    guards: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        d = {
            "id": self.id,
            "kind": self.kind,
            "statement": self.statement,
            "figure": self.figure,
            "parts": [p.as_dict() for p in self.parts],
            "verdict": self.verdict,
            "note": self.note,
        }
        if self.reason:
            d["reason"] = self.reason
        dropped = [p.estimate.dropped for p in self.parts if p.estimate.dropped is not None]
        if dropped:
            d["dropped_seeds"] = max(dropped)
        d.update(self.guards)
        return d


class ClaimTable:
    """Marker base; see :func:`_claim_table` (a DataFrame whose HTML carries anchors)."""


def _claim_table(rows: list[dict[str, Any]]):
    import pandas as pd

    class _ClaimTable(pd.DataFrame, ClaimTable):
        """The claims of a chapter as a DataFrame; its HTML gives each claim's first row
        the id :func:`claim_anchor` so the scorecard can link to it."""

        @property
        def _constructor(self):
            return pd.DataFrame

        def _repr_html_(self):
            out = super()._repr_html_()
            if out is None or "claim" not in self.columns:
                return out
            for cid in [c for c in self["claim"] if c]:
                cell = f"<td>{_html.escape(cid)}</td>"
                out = out.replace(cell, f'<td id="{claim_anchor(cid)}">{_html.escape(cid)}</td>', 1)
            return out

    return _ClaimTable(rows)


#: Where a notebook run outside ``plasticity-book execute`` writes its claim records and
#: figures: ``results/adhoc/<profile>/`` (never a book's ``results/<profile>/``).
ADHOC_FOLDER = "adhoc"


def results_dir(profile: str) -> Path:
    """Where claim records and figures go: ``$PLASTICITY_RESULTS_DIR`` if set
    (``plasticity-book execute`` points it at its staging folder, which it publishes
    into the book's ``results/<profile>/``), else ``<repo>/results/adhoc/<profile>``
    (the repository found from the working directory: a folder with ``chapters/`` and
    ``pyproject.toml`` or ``_toc.yml``), else ``./results/adhoc/<profile>``. So a chapter
    run by hand, by papermill directly or under ``pytest --nbmake`` never writes into
    the results the book is built from."""
    env = os.environ.get("PLASTICITY_RESULTS_DIR")
    if env:
        return Path(env)
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "chapters").is_dir() and (
            (d / "pyproject.toml").exists() or (d / "_toc.yml").exists()
        ):
            return d / "results" / ADHOC_FOLDER / profile
    return here / "results" / ADHOC_FOLDER / profile


class ClaimBook:
    """The claims of one chapter run.

    Args:
      chapter: the chapter id, e.g. ``"ch00_overview"`` (its profile module's name).
      params: the resolved parameters (``profiles.Params``); ``profile`` and
        ``seeds`` are read from it.
      dataset: the dataset that really ran (``Dataset.source``).
    """

    def __init__(self, chapter: str, params: Any, dataset: str = ""):
        self.chapter = chapter
        self.params = params
        self.profile = getattr(params, "profile", "default")
        self.dataset = dataset
        self.claims: list[ClaimRecord] = []
        self.diverged: dict[str, int] = {}
        self._start = _process_start_time()

    @property
    def fallback_data(self) -> bool:
        """Whether the run used the digits fallback instead of the dataset it asked for
        (``Dataset.source`` says ``fallback``)."""
        return "fallback" in str(self.dataset)

    @property
    def evaluated(self) -> bool:
        """Whether verdicts are evaluated: not at the smoke profile, and not on the
        digits fallback (``allow_fallback=True`` at another profile: the 8x8 digits
        cannot test the paper's claims)."""
        return self.profile != "smoke" and not self.fallback_data

    @property
    def not_evaluated_verdict(self) -> str:
        return NOT_EVALUATED_SMOKE if self.profile == "smoke" else NOT_EVALUATED_FALLBACK

    def note_diverged(self, arm: str, flags: Sequence[bool] | np.ndarray | int) -> int:
        """Record how many seeds of ``arm`` diverged (``flags``: the engine's per-seed
        ``RunResult.diverged`` ``(S,)`` bool, or a count); stored in the record as
        ``diverged_seeds: {arm: count}``. Returns the count."""
        count = int(np.sum(np.asarray(flags, dtype=np.int64)))
        if count < 0:
            raise ValueError(f"note_diverged({arm!r}): count must be >= 0, got {count}")
        self.diverged[str(arm)] = count
        return count

    def check(
        self,
        id: str,
        statement: str,
        figure: str,
        statistic: str | None = None,
        estimate: Estimate | None = None,
        threshold: float | None = None,
        direction: str | None = None,
        parts: Sequence[Part] | None = None,
        note: str = "",
        kind: str = "paper",
        *,
        bound: Bound | None = None,
        baseline_loses: Baseline | Sequence[Baseline] | None = None,
        first_task: FirstTask | None = None,
    ) -> ClaimRecord:
        """Record a claim: either one condition (statistic/estimate/threshold/
        direction) or several ``parts`` (built with :func:`part` / :func:`band`).

        ``kind`` is one of :data:`KINDS`: ``"paper"`` (a finding of the paper tested by
        an experiment), ``"derivation"`` (an identity or derivation checked
        numerically) or ``"extension"`` (an analysis the book adds).

        Informativeness rules (module docstring): ``bound`` applies to the single
        condition (with ``parts``, give it to each :func:`part`); ``baseline_loses``
        (a claim id recorded earlier in this book, a ClaimRecord or a Part; or a
        sequence: all of them must be reproduced) and ``first_task`` apply to the whole
        claim."""
        if kind not in KINDS:
            raise ValueError(f"claim {id!r}: kind={kind!r} is not one of {list(KINDS)}")
        if parts is None:
            if statistic is None or estimate is None or threshold is None or direction is None:
                raise ValueError(
                    f"claim {id!r}: give statistic, estimate, threshold and direction, or parts"
                )
            parts = [part(statistic, estimate, threshold, direction, bound=bound)]
        elif bound is not None:
            raise ValueError(
                f"claim {id!r}: `bound` goes with a single condition; with `parts`, give "
                "each part its own bound (claims.part(..., bound=...))"
            )
        parts = list(parts)
        if not parts:
            raise ValueError(f"claim {id!r}: `parts` is empty")
        if not all(isinstance(p, Part) for p in parts):
            raise TypeError(f"claim {id!r}: every entry of `parts` must be a claims.Part")
        if any(c.id == id for c in self.claims):
            raise ValueError(f"claim {id!r} recorded twice")
        if first_task is not None and not isinstance(first_task, FirstTask):
            raise TypeError(f"claim {id!r}: first_task must be a claims.FirstTask")
        baselines = [_baseline_outcome(b, self) for b in _baseline_list(baseline_loses)]
        reasons = [p.reason for p in parts if p.reason and p.verdict != "reproduced"]
        outcome = combine_verdicts([p.verdict for p in parts])
        outcome = _guard(outcome, reasons, baselines, first_task)
        verdict = outcome if self.evaluated else self.not_evaluated_verdict
        guards: dict[str, Any] = {}
        if baselines:
            guards["baseline_loses"] = {name: v for name, v in baselines}
        if first_task is not None:
            guards["first_task"] = first_task.as_dict()
        rec = ClaimRecord(
            id, statement, figure, parts, verdict, note, kind, "; ".join(dict.fromkeys(reasons))
        )
        rec.evaluated_verdict = outcome
        rec.guards = guards
        self.claims.append(rec)
        return rec

    def table(self):
        """The claims as a pandas DataFrame, one row per condition (a ``reason``
        column when any verdict has one). Its HTML (the notebook's display) gives each
        claim the anchor :func:`claim_anchor`, which the scorecard links to."""
        any_reason = any(c.reason or any(p.reason for p in c.parts) for c in self.claims)
        rows = []
        for c in self.claims:
            part_reasons = {p.reason for p in c.parts if p.reason}
            for i, p in enumerate(c.parts):
                row = {
                    "claim": c.id if i == 0 else "",
                    "statistic": p.statistic,
                    "measured [95% CI]": format_estimate(p.estimate),
                    "threshold": format_threshold(p.direction, p.threshold, p.threshold_high),
                    "condition": p.verdict if self.evaluated else "–",
                    "verdict": c.verdict if i == 0 else "",
                }
                if any_reason:
                    extra = [r for r in c.reason.split("; ") if r and r not in part_reasons]
                    row["reason"] = "; ".join(
                        ([p.reason] if p.reason else []) + (extra if i == 0 else [])
                    )
                rows.append(row)
        return _claim_table(rows)

    def as_dict(self) -> dict[str, Any]:
        p = self.params
        fields = p.as_dict() if hasattr(p, "as_dict") else {}
        d = {
            "chapter": self.chapter,
            "profile": self.profile,
            "dataset": self.dataset,
            "seeds": fields.get("seeds"),
            "parameters": fields,
            "runtime_s": round(time.time() - self._start, 1),
            # where the time went (compile / training / evaluation / plotting / other)
            "timing": timing.summary(),
            "finished": _dt.datetime.now().isoformat(timespec="seconds"),
            "claims": [c.as_dict() for c in self.claims],
        }
        if self.diverged:
            d["diverged_seeds"] = dict(self.diverged)
        return d

    def save(self, directory: str | os.PathLike | None = None) -> Path:
        """Write ``<chapter>.claims.json`` atomically (temp file, then rename)."""
        d = Path(directory) if directory is not None else results_dir(self.profile)
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{self.chapter}.claims.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.as_dict(), indent=2, default=_json_default))
        os.replace(tmp, path)
        return path


def _process_start_time() -> float:
    """When this Python process (the notebook's kernel) started: the runtime of a
    chapter is measured from there, not from the creation of its ClaimBook."""
    try:
        import psutil

        return psutil.Process().create_time()
    except Exception:  # noqa: BLE001 - psutil missing or unsupported platform
        return time.time()


def _json_default(o: Any):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def load_records(directory: str | os.PathLike) -> list[dict[str, Any]]:
    """Read every ``*.claims.json`` in ``directory`` (sorted by chapter)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(d.glob("*.claims.json"))]


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation ρ of ``x`` and ``y`` (each ``(n,)``), computed exactly.

    ρ is the Pearson correlation of the ranks (ties get their average rank, as in
    ``scipy.stats.spearmanr``). Ranks are rational, so ρ is exact arithmetic up to one
    square root; ``scipy.stats.spearmanr`` computes it in floating point and returns
    e.g. ``0.8999999999999998`` for an exact 0.9 (n = 5, no ties), which fails a
    ``>= 0.9`` threshold. Here:

    * With doubled average ranks ``a = 2 rank(x)``, ``b = 2 rank(y)`` (integers), the
      sums ``Sab = n Σ ab - Σa Σb``, ``Saa``, ``Sbb`` are computed as exact Python
      integers and ``ρ = Sab / sqrt(Saa Sbb)``.
    * Without ties ``Saa = Sbb`` and this is the textbook ``1 - 6 Σ d_i² / (n (n² - 1))``.
      Whenever ``Saa Sbb`` is a perfect square (always without ties) ρ is a rational
      number and the returned float is that rational correctly rounded: an exact
      0.9 is returned as ``0.9``.
    * Otherwise (some ties) ρ is irrational -- it can never equal a decimal threshold
      exactly -- and it is evaluated with 50-digit decimal arithmetic, then rounded
      once to float64 (so within half an ulp of the true value; no ad-hoc rounding
      to a number of decimals is needed).

    Matches ``scipy.stats.spearmanr(x, y).statistic`` to ~1e-15.

    Args:
      x, y: ``(n,)`` sequences of real numbers, same length ``n >= 1``.
    Returns:
      ρ in [-1, 1] as a Python float; ``nan`` if either side is constant (including
      ``n = 1``) or contains a NaN (as scipy's default ``nan_policy="propagate"``).
    Raises:
      ValueError: ``x`` or ``y`` is not one-dimensional, is empty, or their lengths
        differ.
    """
    from decimal import Decimal, localcontext
    from fractions import Fraction

    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(
            f"spearman: `x` and `y` must be one-dimensional, got shapes {x.shape} and {y.shape}"
        )
    if x.size != y.size:
        raise ValueError(
            f"spearman: `x` and `y` must have the same length, got {x.size} and {y.size}"
        )
    if x.size == 0:
        raise ValueError("spearman: `x` and `y` are empty; need at least one pair")
    if np.isnan(x).any() or np.isnan(y).any():
        return float("nan")
    n = int(x.size)
    # Doubled average ranks are integers (average ranks are multiples of 1/2).
    a = np.rint(2 * stats.rankdata(x, method="average")).astype(np.int64)
    b = np.rint(2 * stats.rankdata(y, method="average")).astype(np.int64)
    if n > 1 << 20:  # keep the int64 sums (<= 4 n^3) far from overflow
        a, b = a.astype(object), b.astype(object)
    sa, sb = int(a.sum()), int(b.sum())
    sab = n * int(a.dot(b)) - sa * sb
    saa = n * int(a.dot(a)) - sa * sa
    sbb = n * int(b.dot(b)) - sb * sb
    if saa == 0 or sbb == 0:  # all ranks equal: a constant side (also n = 1)
        return float("nan")
    prod = saa * sbb
    root = math.isqrt(prod)
    if root * root == prod:  # rational: correctly rounded float of the exact fraction
        return float(Fraction(sab, root))
    with localcontext() as ctx:
        ctx.prec = 50
        return float(Decimal(sab) / Decimal(prod).sqrt())


REASON_CANNOT_FAIL = "the protocol could not have failed the test"


def could_fail(statistic: str, value: float, required: float, why: str = "") -> Part:
    """A part that states whether the protocol let the claim fail (issue 15).

    Some tests pass whatever the data unless the protocol gives the alternative a chance:
    e.g. "the offset is not in the final-layer bias" cannot fail when Adam, whose steps
    are bounded by about one learning rate, could not have moved the bias to ``b`` in
    the steps given (``value = lr * steps``, ``required = b``). The part compares the
    protocol's capacity ``value`` with the ``required`` one, exactly (no interval):

    * ``value >= required``: ``reproduced`` (the test could have failed);
    * otherwise ``uninformative`` with the reason :data:`REASON_CANNOT_FAIL` (and ``why``),
      never ``not reproduced``: the protocol, not the paper's finding, fell short. Its
      ``interval_verdict`` records ``not reproduced``.

    In a claim made of parts this makes the claim uninformative unless another part is
    not reproduced (``combine_verdicts``).
    """
    value, required = float(value), float(required)
    if not (math.isfinite(value) and math.isfinite(required)):
        raise ValueError(f"could_fail({statistic!r}): value and required must be finite")
    if value >= required:
        return Part(statistic, exact(value), required, ">=", "reproduced")
    reason = f"{REASON_CANNOT_FAIL}: {statistic} = {_fmt(value)} < {_fmt(required)}"
    if why:
        reason += f" ({why})"
    return Part(
        statistic,
        exact(value),
        required,
        ">=",
        "uninformative",
        reason=reason,
        interval_verdict="not reproduced",
    )
