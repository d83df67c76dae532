"""Claim records: the paper's statements, tested against measured statistics.

A *claim* is one statement of the paper (with its section / figure) turned into a
test: a statistic, a threshold and a direction, all fixed before the run (in the
chapter's issue), the measured value with a 95 % interval over seeds, and a verdict
derived from the interval:

* ``reproduced``      the whole interval lies on the claimed side of the threshold;
* ``not reproduced``  the whole interval lies on the other side;
* ``inconclusive``    the interval straddles the threshold.

A value without an interval (a deterministic computation, e.g. a closed-form check
in float64) is compared directly. A claim made of several conditions (``parts``)
is reproduced when every part is, not reproduced when any part is not, and
inconclusive otherwise. At the ``smoke`` profile every verdict reads
``not evaluated (smoke)``: the smoke run checks that the code runs, not the claim.

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
               estimate=t_interval(per_seed_drop), threshold=0.0, direction=">")
    book.table()        # a pandas DataFrame (displayed in the notebook)
    book.save()         # JSON next to the executed notebook

The records are gathered by ``plasticity-book build`` into the scorecard page.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "not evaluated (smoke)")
KINDS = ("paper", "derivation", "extension")
DIRECTIONS = (">", ">=", "<", "<=")
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A measured value with its interval (``low``/``high`` are None when exact)."""

    value: float
    low: float | None = None
    high: float | None = None
    method: str = "exact"
    n: int = 1

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def t_interval(values: Sequence[float] | np.ndarray, confidence: float = CONFIDENCE) -> Estimate:
    """Mean of per-seed ``values`` (shape (n_seeds,)) with a Student-t interval.

    With one seed the interval is undefined (``low = high = None``) and the method
    says so. Non-finite values (diverged seeds) raise: drop or flag them explicitly.
    """
    from scipy import stats

    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("t_interval: `values` is empty; need at least one per-seed value")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"t_interval: `values` contains non-finite entries: {x}")
    mean = float(x.mean())
    if x.size == 1:
        return Estimate(mean, None, None, "single seed (no interval)", 1)
    sem = float(x.std(ddof=1) / math.sqrt(x.size))
    half = float(stats.t.ppf(0.5 + confidence / 2, df=x.size - 1)) * sem
    return Estimate(mean, mean - half, mean + half, f"t-interval over {x.size} seeds", int(x.size))


def bootstrap_interval(
    samples: np.ndarray,
    statistic: Callable[[np.ndarray], float],
    confidence: float = CONFIDENCE,
    resamples: int = BOOTSTRAP_RESAMPLES,
    rng_seed: int = 0,
) -> Estimate:
    """Percentile bootstrap over seeds for an arbitrary statistic.

    Args:
      samples: array whose axis 0 indexes seeds, e.g. (n_seeds, n_conditions).
      statistic: maps an array shaped like ``samples`` (seeds resampled with
        replacement along axis 0) to a float.
    Returns:
      ``Estimate(statistic(samples), low, high)``. Resamples whose statistic is not
      finite (e.g. a correlation of constant values) are dropped; if more than half
      are, the interval is reported as undefined.
    """
    x = np.asarray(samples)
    if x.shape[0] < 1:
        raise ValueError("bootstrap_interval: `samples` has no seeds along axis 0")
    value = float(statistic(x))
    n = x.shape[0]
    if n == 1:
        return Estimate(value, None, None, "single seed (no interval)", 1)
    rng = np.random.default_rng(rng_seed)
    stats_ = np.array([statistic(x[rng.integers(0, n, n)]) for _ in range(resamples)], dtype=np.float64)
    stats_ = stats_[np.isfinite(stats_)]
    if stats_.size < resamples / 2:
        return Estimate(value, None, None, f"bootstrap over {n} seeds (undefined)", n)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats_, [alpha, 1 - alpha])
    return Estimate(value, float(low), float(high), f"bootstrap over {n} seeds", n)


def exact(value: float) -> Estimate:
    """A value with no sampling uncertainty (deterministic computation)."""
    return Estimate(float(value), None, None, "exact", 1)


def _holds(x: float, threshold: float, direction: str) -> bool:
    return {">": x > threshold, ">=": x >= threshold, "<": x < threshold, "<=": x <= threshold}[direction]


def verdict_for(estimate: Estimate, threshold: float, direction: str) -> str:
    """Verdict of one condition ``statistic <direction> threshold`` from its interval.

    Without an interval the point value decides. A non-finite value is
    ``inconclusive`` (it cannot be compared), never silently a pass.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if not math.isfinite(estimate.value):
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


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """All parts reproduced -> reproduced; any not reproduced -> not reproduced."""
    if any(v == "not reproduced" for v in verdicts):
        return "not reproduced"
    if all(v == "reproduced" for v in verdicts):
        return "reproduced"
    return "inconclusive"


@dataclasses.dataclass(frozen=True)
class Part:
    """One condition of a claim: ``statistic <direction> threshold``."""

    statistic: str
    estimate: Estimate
    threshold: float
    direction: str
    verdict: str

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["estimate"] = self.estimate.as_dict()
        return d


def part(statistic: str, estimate: Estimate, threshold: float, direction: str) -> Part:
    """Build a condition and derive its verdict."""
    if not isinstance(estimate, Estimate):
        raise TypeError(f"part({statistic!r}): `estimate` must be an Estimate (use t_interval, bootstrap_interval or exact), got {type(estimate).__name__}")
    return Part(statistic, estimate, float(threshold), direction, verdict_for(estimate, float(threshold), direction))


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


@dataclasses.dataclass
class ClaimRecord:
    """A claim as stored in the JSON record and shown on the scorecard."""

    id: str
    statement: str
    figure: str
    parts: list[Part]
    verdict: str
    note: str = ""
    kind: str = "paper"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "statement": self.statement,
            "figure": self.figure,
            "parts": [p.as_dict() for p in self.parts],
            "verdict": self.verdict,
            "note": self.note,
        }


def results_dir(profile: str) -> Path:
    """Where claim records and figures go: ``$PLASTICITY_RESULTS_DIR`` if set,
    else ``<repo>/results/<profile>`` (the repo found from the working directory),
    else ``./results/<profile>``."""
    env = os.environ.get("PLASTICITY_RESULTS_DIR")
    if env:
        return Path(env)
    here = Path.cwd().resolve()
    for d in (here, *here.parents):
        if (d / "pyproject.toml").exists() and (d / "chapters").is_dir():
            return d / "results" / profile
    return here / "results" / profile


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
        self._start = _process_start_time()

    @property
    def evaluated(self) -> bool:
        return self.profile != "smoke"

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
    ) -> ClaimRecord:
        """Record a claim: either one condition (statistic/estimate/threshold/
        direction) or several ``parts`` (built with :func:`part`).

        ``kind`` is one of :data:`KINDS`: ``"paper"`` (a finding of the paper tested by
        an experiment), ``"derivation"`` (an identity or derivation checked
        numerically) or ``"extension"`` (an analysis the book adds)."""
        if kind not in KINDS:
            raise ValueError(f"claim {id!r}: kind={kind!r} is not one of {list(KINDS)}")
        if parts is None:
            if statistic is None or estimate is None or threshold is None or direction is None:
                raise ValueError(f"claim {id!r}: give statistic, estimate, threshold and direction, or parts")
            parts = [part(statistic, estimate, threshold, direction)]
        parts = list(parts)
        if not parts:
            raise ValueError(f"claim {id!r}: `parts` is empty")
        if any(c.id == id for c in self.claims):
            raise ValueError(f"claim {id!r} recorded twice")
        verdict = combine_verdicts([p.verdict for p in parts]) if self.evaluated else "not evaluated (smoke)"
        rec = ClaimRecord(id, statement, figure, parts, verdict, note, kind)
        self.claims.append(rec)
        return rec

    def table(self):
        """The claims as a pandas DataFrame, one row per condition."""
        import pandas as pd

        rows = []
        for c in self.claims:
            for i, p in enumerate(c.parts):
                rows.append(
                    {
                        "claim": c.id if i == 0 else "",
                        "statistic": p.statistic,
                        "measured [95% CI]": format_estimate(p.estimate),
                        "threshold": f"{p.direction} {_fmt(p.threshold)}",
                        "condition": p.verdict if self.evaluated else "–",
                        "verdict": c.verdict if i == 0 else "",
                    }
                )
        return pd.DataFrame(rows)

    def as_dict(self) -> dict[str, Any]:
        p = self.params
        fields = p.as_dict() if hasattr(p, "as_dict") else {}
        return {
            "chapter": self.chapter,
            "profile": self.profile,
            "dataset": self.dataset,
            "seeds": fields.get("seeds"),
            "parameters": fields,
            "runtime_s": round(time.time() - self._start, 1),
            "finished": _dt.datetime.now().isoformat(timespec="seconds"),
            "claims": [c.as_dict() for c in self.claims],
        }

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
    from fractions import Fraction
    from decimal import Decimal, localcontext

    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"spearman: `x` and `y` must be one-dimensional, got shapes {x.shape} and {y.shape}")
    if x.size != y.size:
        raise ValueError(f"spearman: `x` and `y` must have the same length, got {x.size} and {y.size}")
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
